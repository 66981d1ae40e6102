"""What gradio itself checks in a request before any handler of ours runs, given one clear message.

Gradio validates every event's values first (enough of them; each file field a file payload; no
file outside its upload folder) and answers a failure with {"error": null} and a traceback in the
log. Its Blocks has no hook there, so `guard_payloads` wraps that step (Blocks.preprocess_data) of
our app: the same checks made first, by name, and anything gradio still refuses there turned into
a gr.Error that names the problem, logged as one line, without a traceback.

A raw HTTP call may leave out the trailing fields its handler defaults to None (locality, the
masks, refresh, allow_burned_in), as gradio_client does: a field added later does not break it.
"""

from __future__ import annotations

import functools
import inspect
import logging

import gradio as gr
from gradio.exceptions import InvalidPathError

log = logging.getLogger("mededit.app")
FILE_META = {"_type": "gradio.FileData"}  # what gradio_client.handle_file sends with a file's path
HOW_TO_SEND = "send a file with gradio_client.handle_file, or null for none"


def refusal(message: str) -> gr.Error:
    return gr.Error(message, print_exception=False)


def event_name(block_fn) -> str:
    """The endpoint's name, as clients call it; the UI's own events have none worth saying."""
    public = getattr(block_fn, "api_visibility", "public") != "private"
    return f"/{block_fn.api_name}" if public and getattr(block_fn, "api_name", None) else "this event"


def field_name(component) -> str:
    return getattr(component, "label", None) or type(component).__name__


def file_problem(value) -> str | None:
    """Why a value is not a single file payload (None where it is one, or null)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return f"got {type(value).__name__}"
    if "path" not in value:
        return "got an object without a path"
    if not isinstance(value["path"], str):
        return f"got an object whose path is {type(value['path']).__name__}"
    if value.get("meta") != FILE_META:
        return "got an object without gradio's file meta (_type gradio.FileData)"
    return None


def optional_tail(block_fn) -> int:
    """How many trailing fields the handler itself defaults to None (0 for a handler that does not
    take one parameter per field)."""
    try:
        parameters = [p for p in inspect.signature(block_fn.fn).parameters.values() if p.name != "progress"]
    except (TypeError, ValueError):
        return 0
    if len(parameters) != len(block_fn.inputs) or any(p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                                                     for p in parameters):
        return 0
    count = 0
    for parameter in reversed(parameters):
        if parameter.default is not None:
            break
        count += 1
    return count


def with_defaults(block_fn, inputs: list) -> list:
    """`inputs` with the handler's optional trailing fields that a raw call left out, as None."""
    missing = len(block_fn.inputs) - len(inputs)
    return inputs + [None] * missing if 0 < missing <= optional_tail(block_fn) else inputs


def check_values(block_fn, inputs) -> None:
    """Enough values for the event, and each single-file field a file payload or null."""
    wanted = list(block_fn.inputs)
    if len(inputs) < len(wanted):
        names = ", ".join(field_name(component) for component in wanted)
        least = len(wanted) - optional_tail(block_fn)
        count = f"{least} to {len(wanted)}" if least < len(wanted) else f"{len(wanted)}"
        raise refusal(f"{event_name(block_fn)} takes {count} values ({names}), got {len(inputs)}")
    for component, value in zip(wanted, inputs):
        if isinstance(component, gr.File) and component.file_count == "single":
            problem = file_problem(value)
            if problem is not None:
                raise refusal(f"{field_name(component)} must be a file ({HOW_TO_SEND}); {problem}")


def guard_payloads(blocks: gr.Blocks) -> None:
    """Make `blocks` check every event's values by name before gradio's own step does."""
    original = blocks.preprocess_data

    @functools.wraps(original)
    async def preprocess_data(block_fn, inputs, *args, **kwargs):
        inputs = with_defaults(block_fn, inputs)
        check_values(block_fn, inputs)
        try:
            return await original(block_fn, inputs, *args, **kwargs)
        except InvalidPathError:
            log.warning("%s: refused a file path the client named", event_name(block_fn))
            raise refusal("a file this request names was not uploaded to this server: send the file "
                          "itself (gradio_client.handle_file), not a path") from None
        except ValueError as error:  # pydantic's ValidationError among them: a value of the wrong shape
            log.warning("%s: refused a value gradio could not read (%s)", event_name(block_fn),
                        type(error).__name__)
            raise refusal(f"{event_name(block_fn)}: a value is not of the kind its field takes "
                          f"({type(error).__name__}); files must be sent with gradio_client.handle_file") from None

    blocks.preprocess_data = preprocess_data
