"""What to synthesize: a spec of prompt entries, checked whole, and the order images take them.

Light on purpose (no torch): `synthesize` checks a spec, the count and the seed in well under a
second, before the model is loaded.

A spec is a JSON list of prompt pairs (or {"prompts": [...], "steps", "anatomy_scale",
"style_scale"}), each with a weight, its labels and optional attribute sliders:
    [{"anatomy": "chest x-ray with pleural effusion", "style": "support devices",
      "weight": 2, "labels": {"effusion": 1, "support_devices": 1}},
     {"anatomy": "normal chest x-ray", "style": "", "sliders": {"support_devices": 0.5}}]
"""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.core.errors import MedEditError
from pipelines.core.limits import MAX_DATASET_IMAGES, SCALE_RANGE, SEED_MAX, SLIDER_RANGE, STEPS_RANGE
from pipelines.editing.requests import integer, number, parse_json, prompt, slider_name

ENTRY_KEYS = {"anatomy", "style", "weight", "labels", "sliders"}
SAMPLING_KEYS = {"steps", "anatomy_scale", "style_scale"}
MAX_SPEC_CHARS = 10_000_000  # a spec file (10,000 entries take about 2 MB); nesting bounded too
SPEC_DEPTH = 8  # {"prompts": [{"labels": {...}}]} is 4 deep


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
        sliders = {slider_name(k): number(f"{where} slider {k}", v, *SLIDER_RANGE) for k, v in sliders.items()}
        entries.append(Entry(anatomy, style, weight, {str(k): int(v) for k, v in labels.items()}, sliders))
    normal = json.dumps({"sampling": sampling, "entries": [e.__dict__ for e in entries]}, sort_keys=True)
    return Spec(entries, sampling, hashlib.sha256(normal.encode()).hexdigest()[:16])


def read_spec(path) -> Spec:
    path = Path(path)
    if not path.is_file():
        raise MedEditError(f"spec file '{path}' " + ("is not a file" if path.exists() else "does not exist"))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise MedEditError(f"spec file '{path}' is not valid JSON: {error}") from None
    except OSError as error:
        raise MedEditError(f"cannot read spec file '{path}' ({error.strerror})") from None
    return parse_spec(parse_json(f"spec file '{path}'", text, MAX_SPEC_CHARS, SPEC_DEPTH))


def check_counts(n, seed) -> None:
    """--n images with seeds --seed .. --seed + n - 1, every one a valid seed."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_DATASET_IMAGES:
        raise MedEditError(f"--n must be a whole number from 1 to {MAX_DATASET_IMAGES}, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX - n:
        raise MedEditError(f"--seed must be a whole number from 0 to {SEED_MAX - n}, got {seed!r}")


def schedule(weights: list[float], n: int) -> list[int]:
    """Entry index of each image: smooth weighted round-robin, every prefix close to the weights."""
    total, current, order = sum(weights), [0.0] * len(weights), []
    for _ in range(n):
        current = [c + w for c, w in zip(current, weights)]
        pick = max(range(len(weights)), key=lambda k: (current[k], -k))
        current[pick] -= total
        order.append(pick)
    return order
