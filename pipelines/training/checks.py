"""The checks every trainer runs on its numbers and paths before any model loads or phantom renders,
so bad input ends in one line (exit 2) with nothing written."""

import math
import os
from pathlib import Path

from pipelines.core.errors import MedEditError
from pipelines.core.limits import SEED_MAX

SAFETENSORS_MODEL = ("config.json", "diffusion_pytorch_model.safetensors")  # a diffusers model folder


def whole(flag: str, value, low: int = 1, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        wanted = f">= {low}" if high is None else f"from {low} to {high}"
        raise MedEditError(f"{flag} must be a whole number {wanted}, got {value!r}")
    return value


def number(flag: str, value, low: float = 0.0, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < low or (high is not None and value > high):
        wanted = f">= {low:g}" if high is None else f"from {low:g} to {high:g}"
        raise MedEditError(f"{flag} must be a finite number {wanted}, got {value}")
    return float(value)


def seed(flag: str, value) -> int:
    return whole(flag, value, 0, SEED_MAX)


def choice(flag: str, value, choices) -> str:
    if value not in choices:
        raise MedEditError(f"{flag} {value!r}: choose one of {', '.join(choices)}")
    return value


def model_folder(flag: str, path, needs=SAFETENSORS_MODEL) -> Path:
    """A local folder holding the files `needs` names (paths inside it): never a Hub id, so a typo
    is not sent to the Hub."""
    folder = Path(path)
    if not folder.is_dir():
        raise MedEditError(f"{flag} {path}: no such folder")
    missing = [name for name in needs if not (folder / name).is_file()]
    if missing:
        raise MedEditError(f"{flag} {path} is not a saved model folder: it has no {', '.join(missing)}")
    return folder


def writable_folder(flag: str, path) -> Path:
    """A folder the run may create or fill: not a file, and its nearest existing ancestor writable."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise MedEditError(f"{flag} {path} exists and is not a folder")
    ancestor = folder
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise MedEditError(f"{flag} {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise MedEditError(f"{flag} {path}: {ancestor} is not writable")
    return folder
