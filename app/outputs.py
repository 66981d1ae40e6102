"""Results as the user gets them: the files a response names, notes (how they are shown: shown_images.py).

Every response writes its files once, into a folder of its own under a random name that no other
request writes, before the response names them: two clients asking for the same thing at the same
moment each download a whole file (gradio's own cache names files by content and rewrites them in
place). The folders sit in gradio's upload folder (this process's own, app/server_folders.py), so
gradio serves them without a copy; the newest `results_kept`, up to `results_bytes` in all, stay on
disk (serving.limits), and all are removed when the app stops.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import tempfile
import threading
import uuid
from collections import deque
from pathlib import Path

import numpy as np
from gradio.utils import get_upload_folder
from PIL import Image

from pipelines.core.files import write_atomic
from pipelines.core.limits import EDITED_MARK, SYNTHETIC_MARK
from pipelines.export.archive import export_zip
from pipelines.export.images import animation_gif, comparison, png_bytes
from pipelines.export.provenance import provenance_from_settings

from app import serving
from app.shown_images import View

ROOT_PREFIX = "mededit-results-"


class ResultFolders:
    """The response folders of this process, oldest first."""

    def __init__(self):
        self._lock = threading.Lock()
        self._root: Path | None = None
        self._folders: deque[Path] = deque()

    def new(self) -> "Response":
        with self._lock:
            if self._root is None:
                parent = Path(get_upload_folder())
                parent.mkdir(parents=True, exist_ok=True)
                self._root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX, dir=parent))
                atexit.register(self.remove_all)
            folder = self._root / uuid.uuid4().hex
            folder.mkdir()
            self._folders.append(folder)
            old = [self._folders.popleft() for _ in range(len(self._folders) - serving.limits.results_kept)]
            old += self._past_byte_limit()
        for path in old:
            shutil.rmtree(path, ignore_errors=True)
        return Response(folder)

    def _past_byte_limit(self) -> list[Path]:
        """The oldest folders, taken off the list, while all of them hold more than results_bytes
        (the newest stays, whatever its size)."""
        sizes = {folder: folder_bytes(folder) for folder in self._folders}
        total, old = sum(sizes.values()), []
        while total > serving.limits.results_bytes and len(self._folders) > 1:
            folder = self._folders.popleft()
            total -= sizes[folder]
            old.append(folder)
        return old

    @property
    def root(self) -> Path | None:
        """The folder holding this process's response folders (None before the first response)."""
        return self._root

    def remove_all(self):
        with self._lock:
            root, self._root = self._root, None
            self._folders.clear()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


def folder_bytes(folder: Path) -> int:
    try:
        return sum(entry.stat().st_size for entry in os.scandir(folder) if entry.is_file())
    except OSError:
        return 0  # removed meanwhile


folders = ResultFolders()


def provenance(settings: dict):
    """The provenance of a result from the settings it reports (a generation: no edit)."""
    edit = {"to_anatomy": "", "to_style": "", "sliders": {}, "swap_at": 1.0, "swap_step": settings["steps"],
            "locality": 0.0}
    return provenance_from_settings({**edit, **settings})


class Response:
    """The files of one response; each written once, whole, before its path is returned."""

    def __init__(self, folder: Path):
        self.folder = folder

    def _write(self, name: str, data: bytes) -> str:
        return str(write_atomic(self.folder / name, data))

    def png(self, name: str, image, settings: dict, extra: dict | None = None) -> str:
        image = image if isinstance(image, Image.Image) else Image.fromarray(image)
        return self._write(f"{name}.png", png_bytes(image, provenance(settings), extra))

    def plain_png(self, name: str, image) -> str:
        """A PNG with no provenance: an image the user brought, shown back to them."""
        image = image if isinstance(image, Image.Image) else Image.fromarray(image)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return self._write(f"{name}.png", buffer.getvalue())

    def gif(self, name: str, frames: list, settings: dict) -> str:
        """A looping GIF (a path keeps gradio from re-encoding it, so it animates)."""
        images = [f if isinstance(f, Image.Image) else Image.fromarray(f) for f in frames]
        return self._write(f"{name}.gif", animation_gif(images, provenance=provenance(settings)))

    def zip(self, kind: str, frames: list[np.ndarray], settings: dict, times: list[float] | None = None) -> str:
        """The export: frames with provenance, side by side, GIF, WebP, DICOM, manifest (sha256)."""
        images = [Image.fromarray(f) for f in frames]
        if kind == "edit":
            extras = [{"image": "neutral", "t": 0.0}, {"image": "edited", "t": 1.0}]
        else:
            extras = [{"frame": i, "t": t} for i, t in enumerate(times)]
        path = self.folder / f"mededit-{kind}-seed{settings['seed']}.zip"
        export_zip(images, provenance(settings), extras, path, before=images[0], after=images[-1])
        return str(path)


def figure(before: Image.Image, after: Image.Image, settings: dict) -> Image.Image:
    """Before | after | difference, labelled and marked as what they are: generated, or the
    user's image edited."""
    return comparison(before, after, provenance(settings))


def report(result, source: str, kind: str) -> dict:
    """The settings actually used, with the model choice: enough to reproduce the result."""
    return {"model": source, **result.settings, "kind": kind}


def notes_markdown(result, timing, view: View, extra: str = "", upload_notes: tuple[str, ...] = ()) -> str:
    """The result's notes, what it changed (`extra`), the time the request took (app/timing.py: the
    cache, the wait and the computing told apart), and what it is: synthetic, or (`upload_notes`
    given, or the settings say so) an image the user brought, edited, and how it is shown (`view`).
    Made after the files are written, so their writing counts."""
    lines = [f"- {n}" for n in (*upload_notes, *result.notes)]
    if extra:
        lines.append(f"- {extra}")
    lines.append(f"- {timing.note(getattr(result, 'prefix_cached', False))}")
    what = f"**your image, {EDITED_MARK}**" if result.settings.get("source") == "upload" else f"**{SYNTHETIC_MARK}**"
    lines.append(f"- {view.note()}; {what}")
    return "\n".join(lines)
