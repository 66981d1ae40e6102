"""Serving until stopped, and leaving nothing behind: the app's folders (results, uploads and the
requests' private copies, app/server_folders.py) are removed on a normal exit, Ctrl-C, SIGTERM
and SIGHUP alike (gradio removes its own cached files as it closes). After kill -9 the next start
removes them."""

from __future__ import annotations

import logging
import os
import signal
import sys

import gradio as gr

from app import server_folders
from app.outputs import folders


def serve(demo: gr.Blocks, **launch_options) -> int:
    """Launch `demo` and block until it is stopped; returns 0 after Ctrl-C, and exits the process
    with 128 + the signal's number after SIGTERM or SIGHUP (143, 129)."""
    stopped = []

    def on_sigterm(signum, frame):
        stopped.append(signum)
        if getattr(demo, "server", None) is not None:
            # uvicorn would wait for open streams (a browser's, a computing request's) and gradio
            # joins its thread for up to 5 s: stop within a second instead.
            demo.server.force_exit = True
            logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)  # the cut streams are no errors
        raise KeyboardInterrupt  # gradio closes its server on it, as on Ctrl-C

    previous = {signum: signal.signal(signum, on_sigterm) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        demo.launch(**launch_options)
    except KeyboardInterrupt:
        pass  # a stop before the server was up
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        folders.remove_all()
        server_folders.remove_all()
    if stopped:
        # A request may still be computing in a worker thread; the interpreter's normal exit would
        # then abort ("terminate called without an active exception", status 134): leave now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + stopped[0])
    return 0
