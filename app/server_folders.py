"""Where this server writes: two folders of its own, each owned by the live process
(pipelines/core/owned_folders.py), both under one base folder (GRADIO_TEMP_DIR as set at start,
or the system's temporary folder/mededit-<uid>):

- `served-<pid>-…`: gradio's upload folder for this process (GRADIO_TEMP_DIR is pointed at it), so
  gradio serves this process's uploads and results and nothing a killed process left;
- `private-<pid>-…`: each running request's copies of its uploads, which gradio never serves.

At start-up every such folder that no live process owns is removed first: a server killed by
kill -9 leaves nothing for the next one to serve or keep. On exit and SIGTERM both are removed.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading
from pathlib import Path

from pipelines.core.owned_folders import LOCK_NAME, owned_folder, release, remove_unowned

SERVED, PRIVATE = "served-", "private-"
_lock = threading.Lock()
_folders: dict[str, Path] = {}


def base() -> Path:
    """The folder holding every server's folders: read once, before prepare() changes the variable."""
    if "base" not in _folders:
        chosen = os.environ.get("GRADIO_TEMP_DIR")
        if chosen and Path(chosen).name.startswith(SERVED) and (Path(chosen) / LOCK_NAME).exists():
            chosen = str(Path(chosen).parent)  # inherited from a server that started this process
        user = os.getuid() if hasattr(os, "getuid") else "user"  # one base per user (Windows: per machine)
        _folders["base"] = Path(chosen) if chosen else Path(tempfile.gettempdir()) / f"mededit-{user}"
    return _folders["base"]


def prepare() -> Path:
    """Once per process, before gradio reads its upload folder: remove what dead servers left,
    make this process's folders and point gradio at the served one. Returns the served folder."""
    with _lock:
        if "served" not in _folders:
            root = base()
            for prefix in (SERVED, PRIVATE):
                remove_unowned(root, prefix)
            _folders.update(served=owned_folder(root, SERVED), private=owned_folder(root, PRIVATE))
            atexit.register(remove_all)  # once per pair made: a second call finds nothing to remove
        os.environ["GRADIO_TEMP_DIR"] = str(_folders["served"])
        return _folders["served"]


def private() -> Path:
    """The folder for requests' private copies of their uploads."""
    prepare()
    return _folders["private"]


def remove_all():
    """Remove this process's folders (on exit and SIGTERM); a later prepare() makes new ones."""
    with _lock:
        owned = [_folders.pop(name) for name in ("served", "private") if name in _folders]
    for folder in owned:
        release(folder)
