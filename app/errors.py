"""How errors reach the user: a MedEditError as its own message, anything else as a short line
(the server log keeps the detail); never a traceback."""

import functools
import logging

import gradio as gr

from pipelines.core.errors import MedEditError

log = logging.getLogger("mededit.app")


def user_errors(fn):
    """MedEditError -> gr.Error(message); anything else -> logged, short gr.Error, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except MedEditError as error:
            raise gr.Error(str(error), print_exception=False) from None
        except Exception as error:  # noqa: BLE001 - the server keeps serving, the log keeps the detail
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"internal error ({type(error).__name__}); the server log has the details",
                           print_exception=False) from None

    return wrapper
