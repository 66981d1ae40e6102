"""Files that clients upload: an image to edit and its masks (the upload panel, /edit_image,
/series_image, /describe_image). A request reads only files that gradio's upload route received
(never a path a client names), and every upload a request names is removed when that request
ends, whether it was read or sent in place of a value (gradio would keep it for an hour). Gradio
refuses uploads over max_file_size itself."""

from __future__ import annotations

import functools
import logging
import weakref
from pathlib import Path

from gradio.utils import get_upload_folder

from pipelines.core.errors import MedEditError

log = logging.getLogger("mededit.app")
_apps = weakref.WeakSet()  # the Blocks whose uploads requests may read


def received_path(value, what: str) -> str | None:
    """The path of a file a client uploaded through gradio (a file payload, as sent), or None when
    none was sent; a path gradio did not receive is refused."""
    if value is None or value == "":
        return None
    path = value.get("path") if isinstance(value, dict) else None
    if not isinstance(path, str):
        raise MedEditError(f"the {what} must be a file (send it with gradio_client.handle_file), "
                           f"got {type(value).__name__}")
    if not any(path in blocks.upload_file_set for blocks in _apps):
        raise MedEditError(f"the {what} was not uploaded to this server: send the file itself "
                           "(gradio_client.handle_file), not a path")
    return path


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


def discard_uploads(blocks, values):
    """Remove the uploads (files gradio received from a client, and only those) that `values` name."""
    uploaded = blocks.upload_file_set  # gradio's record of what its upload route wrote
    for path in named_files(values):
        if path in uploaded:
            uploaded.discard(path)
            try:
                Path(path).unlink(missing_ok=True)
                if Path(path).parent != Path(get_upload_folder()):
                    Path(path).parent.rmdir()  # gradio puts each upload in a folder of its own
            except OSError as error:
                log.debug("upload %s: %s", path, error)


def releasing_uploads(blocks, fn):
    """`fn`, followed (however it ends) by the removal of the uploads its arguments name."""
    _apps.add(blocks)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            discard_uploads(blocks, [args, kwargs])

    return wrapper
