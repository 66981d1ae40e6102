"""Serving until stopped, and leaving nothing behind: the app's result folders are removed on a
normal exit, Ctrl-C and SIGTERM alike (gradio removes its own cached files as it closes)."""

from __future__ import annotations

import signal

import gradio as gr

from app.outputs import folders


def serve(demo: gr.Blocks, **launch_options) -> int:
    """Launch `demo` and block until it is stopped; returns the exit status (143 after SIGTERM)."""
    stopped = []

    def on_sigterm(signum, frame):
        stopped.append(signum)
        raise KeyboardInterrupt  # gradio closes its server on it, as on Ctrl-C

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        demo.launch(**launch_options)
    except KeyboardInterrupt:
        pass  # a stop before the server was up
    finally:
        signal.signal(signal.SIGTERM, previous)
        folders.remove_all()
    return 128 + signal.SIGTERM if stopped else 0
