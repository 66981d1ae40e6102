"""Synthetic training data from a spec: an imagefolder of generated images with their labels.

A spec is a JSON list of prompt pairs (or {"prompts": [...], "steps", "anatomy_scale",
"style_scale"}), each with a weight, its labels and optional attribute sliders:
    [{"anatomy": "chest x-ray with pleural effusion", "style": "support devices",
      "weight": 2, "labels": {"effusion": 1, "support_devices": 1}},
     {"anatomy": "normal chest x-ray", "style": "", "sliders": {"support_devices": 0.5}}]
Image i uses the entry that a smooth weighted round-robin gives i (exact proportions, no
randomness) and seed `seed + i`, so every image is fixed by its index alone. Indices are split
across processes (accelerate's PartialState: i % num_processes == process_index); each process
appends its rows to its own `metadata-<rank>.jsonl` after the PNG is in place, skips indices
already written (resume), and the main process merges the shards into metadata.jsonl at the end.
"""

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import PartialState
from tqdm import tqdm

from pipelines.core.errors import MedEditError
from pipelines.core.files import write_atomic
from pipelines.core.limits import SCALE_RANGE, SEED_MAX, SLIDER_RANGE, STEPS_RANGE, SYNTHETIC_MARK
from pipelines.editing.pipeline import MedEditPipeline
from pipelines.editing.requests import Edit, Sampling, integer, number, prompt
from pipelines.editing.sampling import advance, start
from pipelines.export.images import save_png
from pipelines.export.provenance import provenance_from_settings
from pipelines.model.loaded import decode
from pipelines.model.loading import load_model

METADATA = "metadata.jsonl"
MANIFEST = "synthesis.json"
IMAGES = "images"
ENTRY_KEYS = {"anatomy", "style", "weight", "labels", "sliders"}
SAMPLING_KEYS = {"steps", "anatomy_scale", "style_scale"}
MAX_IMAGES = 10_000_000


@dataclass
class Entry:
    anatomy: str
    style: str
    weight: float = 1.0
    labels: dict = field(default_factory=dict)
    sliders: dict = field(default_factory=dict)


@dataclass
class Spec:
    entries: list[Entry]
    sampling: dict  # overrides of the model's defaults: steps, anatomy_scale, style_scale
    digest: str  # of the normalised spec: a resumed run must use the same one


def parse_spec(data) -> Spec:
    """Check a spec (already parsed JSON) whole; MedEditError names the first problem."""
    sampling = {}
    if isinstance(data, dict):
        unknown = set(data) - SAMPLING_KEYS - {"prompts"}
        if unknown:
            raise MedEditError(f"spec: unknown key(s) {', '.join(sorted(unknown))}; allowed: prompts, "
                               f"{', '.join(sorted(SAMPLING_KEYS))}")
        for key in sorted(SAMPLING_KEYS & set(data)):
            check = (lambda n, v: integer(n, v, *STEPS_RANGE)) if key == "steps" else \
                (lambda n, v: number(n, v, *SCALE_RANGE))
            sampling[key] = check(f"spec {key}", data[key])
        data = data.get("prompts")
    if not isinstance(data, list) or not data:
        raise MedEditError("spec must be a non-empty JSON list of prompt entries, or an object with "
                           "'prompts' holding one")
    entries = []
    for i, item in enumerate(data):
        where = f"spec entry {i}"
        if not isinstance(item, dict):
            raise MedEditError(f"{where} must be an object with anatomy, style, weight, labels, sliders")
        unknown = set(item) - ENTRY_KEYS
        if unknown:
            raise MedEditError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: "
                               f"{', '.join(sorted(ENTRY_KEYS))}")
        anatomy = prompt(f"{where} anatomy", item.get("anatomy", ""))
        style = prompt(f"{where} style", item.get("style", ""))
        if not (anatomy or style):
            raise MedEditError(f"{where} needs an anatomy prompt, a style prompt, or both")
        weight = number(f"{where} weight", item.get("weight", 1), 0.0, 1e9)
        if weight <= 0:
            raise MedEditError(f"{where} weight must be above 0, got {weight:g}")
        labels, sliders = item.get("labels", {}), item.get("sliders", {})
        if not isinstance(labels, dict) or any(v not in (0, 1) for v in labels.values()):
            raise MedEditError(f"{where} labels must map names to 0 or 1, got {labels!r}")
        if not isinstance(sliders, dict):
            raise MedEditError(f"{where} sliders must map attribute names to scales")
        sliders = {str(k): number(f"{where} slider {k}", v, *SLIDER_RANGE) for k, v in sliders.items()}
        entries.append(Entry(anatomy, style, weight, {str(k): int(v) for k, v in labels.items()}, sliders))
    normal = json.dumps({"sampling": sampling, "entries": [e.__dict__ for e in entries]}, sort_keys=True)
    return Spec(entries, sampling, hashlib.sha256(normal.encode()).hexdigest()[:16])


def read_spec(path) -> Spec:
    path = Path(path)
    if not path.is_file():
        raise MedEditError(f"spec file '{path}' does not exist")
    try:
        return parse_spec(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MedEditError(f"spec file '{path}' is not valid JSON: {error}") from None


def schedule(weights: list[float], n: int) -> list[int]:
    """Entry index of each image: smooth weighted round-robin, every prefix close to the weights."""
    total, current, order = sum(weights), [0.0] * len(weights), []
    for _ in range(n):
        current = [c + w for c, w in zip(current, weights)]
        pick = max(range(len(weights)), key=lambda k: (current[k], -k))
        current[pick] -= total
        order.append(pick)
    return order


def _read_rows(path: Path) -> list[dict]:
    """Rows of a JSON-lines file; a torn last line (a process killed mid-write) is dropped."""
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and isinstance(row.get("index"), int):
                rows.append(row)
    return rows


def written_rows(out: Path) -> dict[int, dict]:
    """Index -> row over metadata.jsonl and every shard, for the rows whose image exists."""
    rows = {}
    for path in [out / METADATA, *sorted(out.glob("metadata-*.jsonl"))]:
        for row in _read_rows(path):
            if (out / row.get("file_name", "")).is_file():
                rows[row["index"]] = row
    return rows


def check_manifest(out: Path, manifest: dict) -> None:
    path = out / MANIFEST
    if not path.is_file():
        if out.is_dir() and any(out.iterdir()):
            raise MedEditError(f"--out '{out}' holds files but no {MANIFEST}; choose a new folder")
        return
    old = json.loads(path.read_text())
    for key in ("spec", "seed", "model_id", "model_revision"):
        if old.get(key) != manifest[key]:
            raise MedEditError(f"'{out}' was written with another {key.replace('_', ' ')} "
                               f"({old.get(key)!r}, now {manifest[key]!r}); use a new --out folder")


def render(pipeline, entry: Entry, seed: int, sampling: dict):
    """One image of an entry: generate, or with sliders the edited conditioning from step 0."""
    s = Sampling.with_defaults(pipeline.model.info.defaults, entry.anatomy, entry.style, seed,
                               sampling.get("steps"), sampling.get("anatomy_scale"),
                               sampling.get("style_scale"))
    edit = Edit(sliders=dict(entry.sliders), swap_at=0.0)
    if not entry.sliders:
        return pipeline.generate(s), pipeline.settings(s, edit)
    prefix = start(pipeline.model.scheduler, s.steps, pipeline.noise(s.seed))
    tail = advance(pipeline.model.transformer, prefix, s.steps, pipeline.edited_branches(s, edit),
                   s.anatomy_scale, s.style_scale)
    return decode(pipeline.model, tail.latents)[0].numpy(), pipeline.settings(s, edit)


def _append(path: Path, row: dict) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def merge(out: Path) -> int:
    """metadata.jsonl := every row so far, by index; the shards are then removed."""
    rows = written_rows(out)
    write_atomic(out / METADATA, "".join(json.dumps(rows[i], ensure_ascii=False) + "\n"
                                         for i in sorted(rows)).encode("utf-8"))
    for shard in out.glob("metadata-*.jsonl"):
        shard.unlink()
    return len(rows)


def synthesize(spec: Spec, n: int, out, model_source: str | None = None, seed: int = 0,
               progress: bool = True) -> dict:
    """Write images 0..n-1 of the spec into out (this process's share); returns a summary."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
        raise MedEditError(f"--n must be a whole number from 1 to {MAX_IMAGES}, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX - n:
        raise MedEditError(f"--seed must be a whole number from 0 to {SEED_MAX - n}, got {seed!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MedEditError(f"--out '{out}' exists and is not a folder")
    # Several processes on a machine without CUDA (torchrun, tests) talk over gloo on the CPU.
    state = PartialState(cpu=not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1)
    model = load_model(model_source)
    for entry in spec.entries:  # every slider name checked before the first image
        for name in entry.sliders:
            model.info.attribute(name)
    manifest = {"spec": spec.digest, "seed": seed, "model_id": model.model_id,
                "model_revision": model.revision, "synthetic": SYNTHETIC_MARK}
    check_manifest(out, manifest)
    state.wait_for_everyone()
    if state.is_main_process:
        (out / IMAGES).mkdir(parents=True, exist_ok=True)
        if not (out / MANIFEST).is_file():
            text = json.dumps({**manifest, "entries": len(spec.entries)}, indent=2)
            (out / MANIFEST).write_text(text + "\n")
    state.wait_for_everyone()

    pipeline = MedEditPipeline(model)
    order = schedule([e.weight for e in spec.entries], n)
    done = written_rows(out)
    mine = [i for i in range(state.process_index, n, state.num_processes) if i not in done]
    shard = out / f"metadata-{state.process_index}.jsonl"
    bar = tqdm(mine, desc=f"synthesize ({state.num_processes} processes)",
               disable=not (progress and state.is_local_main_process))
    for i in bar:
        entry = spec.entries[order[i]]
        image, settings = render(pipeline, entry, seed + i, spec.sampling)
        name = f"{IMAGES}/{i:06d}.png"
        save_png(image, out / name, provenance_from_settings(settings))
        _append(shard, {"file_name": name, "anatomy": entry.anatomy, "style": entry.style,
                        "labels": entry.labels, "sliders": entry.sliders, "seed": seed + i,
                        "index": i, "entry": order[i], "synthetic": True, "note": SYNTHETIC_MARK,
                        "model_id": model.model_id, "model_revision": model.revision})
    state.wait_for_everyone()
    total = merge(out) if state.is_main_process else None
    state.wait_for_everyone()
    return {"out": str(out), "process": state.process_index, "processes": state.num_processes,
            "written": len(mine), "skipped": sum(1 for i in range(state.process_index, n,
                                                               state.num_processes) if i in done),
            "total": total}
