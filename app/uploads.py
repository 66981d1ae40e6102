"""Files that clients upload: an image to edit and its masks (the upload panel, /edit_image,
/series_image, /describe_image).

An upload lives only as long as the request that names it. As the request starts, each upload it
names is claimed (app/upload_ledger.py) and copied into a folder of the request's own, outside
everything gradio serves (app/server_folders.py), under a plain name (`upload-0`, not the
client's file name) readable only by the server's user; gradio's copy is removed then, unless a
twin upload of the same bytes still waits for its own request. The handler reads only these
copies (never a path a client names), and the request's folder is removed when it ends, however
it ends; on SIGTERM the server removes all of them, and after a kill the next start does.
Gradio refuses uploads over max_file_size itself.
"""

from __future__ import annotations

import contextvars
import functools
import os
import shutil
import tempfile
from pathlib import Path

from pipelines.core.errors import MedEditError

from app import server_folders
from app.upload_ledger import ledger_of

# The running request's copies: the path gradio gave an upload -> the request's private copy.
_copies: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("mededit_upload_copies", default={})


def received_path(value, what: str) -> str | None:
    """The request's private copy of a file a client uploaded through gradio (a file payload, as
    sent), or None when none was sent; a path gradio did not receive for this request is refused."""
    if value is None or value == "":
        return None
    path = value.get("path") if isinstance(value, dict) else None
    if not isinstance(path, str):
        raise MedEditError(f"the {what} must be a file (send it with gradio_client.handle_file), "
                           f"got {type(value).__name__}")
    copy = _copies.get().get(path)
    if copy is None:
        raise MedEditError(f"the {what} was not uploaded to this server, or was sent with another request: send "
                           "the file itself with each request (gradio_client.handle_file), not a path")
    return copy


def named_files(values) -> list[str]:
    """The paths of gradio file payloads ({"path": ...}) anywhere in `values` (a loop, not
    recursion: a client's nesting can be as deep as it likes)."""
    found, stack = [], [values]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if isinstance(value.get("path"), str):
                found.append(value["path"])
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
    return found


class RequestUploads:
    """One request's private copies of the uploads it names."""

    def __init__(self, ledger):
        self.ledger = ledger
        self.folder: Path | None = None
        self.copies: dict[str, str] = {}

    def claim_all(self, paths: list[str]) -> dict[str, str]:
        for path in paths:  # each naming claims one upload: a file sent twice was uploaded twice
            descriptor = self.ledger.claim(path)
            if descriptor is None:
                continue
            with os.fdopen(descriptor, "rb") as source:
                if path not in self.copies:
                    self.copies[path] = self._copy(source)
        return self.copies

    def _copy(self, source) -> str:
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="request-", dir=server_folders.private()))  # 0700
        target = self.folder / f"upload-{len(self.copies)}"
        with os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as copy:
            shutil.copyfileobj(source, copy, 1 << 20)
        return str(target)

    def remove(self):
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def releasing_uploads(blocks, fn):
    """`fn` reading private copies of the uploads its arguments name; the copies are removed when
    it ends, however it ends."""
    ledger = ledger_of(blocks)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        uploads = RequestUploads(ledger)
        try:
            token = _copies.set(uploads.claim_all(named_files([args, kwargs])))
            try:
                return fn(*args, **kwargs)
            finally:
                _copies.reset(token)
        finally:
            uploads.remove()

    return wrapper
