"""Results as the user gets them: enlarged views, notes, and the files a response names
(animation, export ZIP)."""

from __future__ import annotations

import atexit
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines.export.archive import export_zip
from pipelines.export.images import animation_gif
from pipelines.export.provenance import provenance_from_settings as provenance

DISPLAY_SIZE = 384  # 64-px images are shown enlarged (nearest neighbour); exports keep true pixels


def enlarge(image: np.ndarray | Image.Image, size: int = DISPLAY_SIZE) -> Image.Image:
    """Nearest-neighbour enlargement for viewing: every true pixel becomes a crisp square."""
    image = image if isinstance(image, Image.Image) else Image.fromarray(image)
    factor = max(1, size // max(image.size))
    return image.resize((image.width * factor, image.height * factor), Image.NEAREST)


def report(result, source: str, kind: str) -> dict:
    """The settings actually used, with the model choice: enough to reproduce the result."""
    return {"model": source, **result.settings, "kind": kind}


def notes_markdown(result, extra: str = "") -> str:
    lines = [f"- {n}" for n in result.notes]
    timing = f"{result.seconds:.2f} s"
    if getattr(result, "prefix_cached", False):
        timing += ", shared prefix reused from the cache"
    lines.append(f"- computed in {timing}{extra}")
    lines.append("- shown enlarged with nearest neighbour; downloads hold the true pixels; "
                 "**synthetic image, not a patient**")
    return "\n".join(lines)


_files = Path(tempfile.mkdtemp(prefix="mededit-app-"))
atexit.register(shutil.rmtree, _files, ignore_errors=True)


def _file_name(prefix: str, settings: dict, suffix: str) -> Path:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return _files / f"{prefix}-seed{settings.get('seed', 0)}-{digest}{suffix}"


def gif_file(frames: list[np.ndarray], settings: dict, display: bool) -> str:
    """A looping GIF on disk (a path keeps gradio from re-encoding it, so it animates)."""
    images = [enlarge(f) if display else Image.fromarray(f) for f in frames]
    path = _file_name("mededit-series-view" if display else "mededit-series", settings, ".gif")
    path.write_bytes(animation_gif(images, provenance=provenance(settings)))
    return str(path)


def zip_file(kind: str, frames: list[np.ndarray], settings: dict, times: list[float] | None = None) -> str:
    """The export ZIP: frames with provenance, side-by-side, GIF, WebP, DICOM, manifest (sha256)."""
    images = [Image.fromarray(f) for f in frames]
    if kind == "edit":
        extras = [{"image": "neutral", "t": 0.0}, {"image": "edited", "t": 1.0}]
    else:
        extras = [{"frame": i, "t": t} for i, t in enumerate(times)]
    path = _file_name(f"mededit-{kind}", settings, ".zip")
    export_zip(images, provenance(settings), extras, path, before=images[0], after=images[-1])
    return str(path)
