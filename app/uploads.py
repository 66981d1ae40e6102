"""Files that clients upload. No input of the app takes a file, so a file sent in place of a value
is refused with its request; either way an upload a request names is removed when that request
ends (gradio would keep it for an hour). Gradio refuses uploads over max_file_size itself."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from gradio.utils import get_upload_folder

log = logging.getLogger("mededit.app")


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

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            discard_uploads(blocks, [args, kwargs])

    return wrapper
