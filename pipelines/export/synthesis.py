"""Synthetic training data from a spec (synthesis_spec.py): an imagefolder of generated images
with their labels.

Image i uses the entry that a smooth weighted round-robin gives i (exact proportions, no
randomness) and seed `seed + i`, so every image is fixed by its index alone. Indices are split
across processes (accelerate's PartialState: i % num_processes == process_index); each process
appends its rows to its own `metadata-<rank>.jsonl` after the PNG is in place, skips indices
already written (resume), and the main process merges the shards into metadata.jsonl at the end.
"""

import json
import os
from pathlib import Path

import torch
from accelerate import PartialState
from tqdm import tqdm

from pipelines.core.errors import MedEditError
from pipelines.core.files import write_atomic
from pipelines.core.limits import SYNTHETIC_MARK
from pipelines.editing.pipeline import MedEditPipeline
from pipelines.editing.requests import Edit, Sampling
from pipelines.editing.sampling import advance, start
from pipelines.export.images import save_png
from pipelines.export.provenance import provenance_from_settings
from pipelines.export.synthesis_spec import Entry, Spec, check_counts, schedule
from pipelines.model.loaded import decode
from pipelines.model.loading import load_model

METADATA = "metadata.jsonl"
MANIFEST = "synthesis.json"
IMAGES = "images"


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
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MedEditError(f"'{path}' is not valid JSON; use a new --out folder") from None
    if not isinstance(old, dict):
        raise MedEditError(f"'{path}' is not a synthesis manifest; use a new --out folder")
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


def remove_leftovers(out: Path) -> None:
    """A killed run's temporary files (write_atomic's hidden `.NAME.*.tmp` siblings): never under
    a real name, but they would pile up over resumed runs."""
    for leftover in [*(out / IMAGES).glob(".*.tmp"), *out.glob(f".{METADATA}.*.tmp")]:
        leftover.unlink(missing_ok=True)


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
    check_counts(n, seed)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MedEditError(f"--out '{out}' exists and is not a folder")
    # Several processes on a machine without CUDA (torchrun, tests) talk over gloo on the CPU.
    state = PartialState(cpu=not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1)
    model = load_model(model_source)
    for entry in spec.entries:  # every slider name checked before the first image
        for name, scale in entry.sliders.items():
            model.info.slider(name, scale)
    manifest = {"spec": spec.digest, "seed": seed, "model_id": model.model_id,
                "model_revision": model.revision, "synthetic": SYNTHETIC_MARK}
    check_manifest(out, manifest)
    state.wait_for_everyone()
    if state.is_main_process:
        try:
            (out / IMAGES).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise MedEditError(f"cannot write in '{out}' ({error.strerror})") from None
        remove_leftovers(out)
        if not (out / MANIFEST).is_file():
            text = json.dumps({**manifest, "entries": len(spec.entries)}, indent=2)
            write_atomic(out / MANIFEST, (text + "\n").encode())
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
