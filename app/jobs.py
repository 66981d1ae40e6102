"""Running one request: its budget checked before any work, then its computation on the shared
device (taking turns between steps and between decoded frames, stopped at the time limit), then
its files written once the device is given back: writing a 64-frame series' PNGs and GIF, or its
export ZIP, is one piece of 1.4-15 s on a loaded core that no other request could interrupt, so a
plain edit waiting behind it would wait that long (app/device.py's bound counts the device's
steps only). How many requests write at once is bounded by gradio's lanes (app/serving.py)."""

from __future__ import annotations

import time

from app import serving, state
from app.inputs import Request
from app.timing import Timing


def step_callback(turn, progress, steps: int, what: str):
    """After each denoising step, `after_step(step)`, and after each decoded frame,
    `after_step(done, total)` (pipelines/model/loaded.decode): the time limit and other requests'
    turns, then the progress bar."""
    def after_step(step: int, decoding: int | None = None):
        if decoding is not None and step >= decoding:
            turn.after_last_step()  # the last decoded frame: nothing is left to compute
        else:
            turn.between_steps()
        if progress is None:
            return
        if decoding is None:
            progress((min(step, steps), steps), desc=what, unit="steps")
        else:
            progress((step, decoding), desc=f"{what}: decoding", unit="frames")
    return after_step


def run(kind: str, request: Request, progress=None, finish=None, exported: bool = False,
        timing: Timing | None = None, lane: str | None = None):
    """The result of a generate, edit or series `request` (`kind`), passed through `finish` (which
    writes its files) once the device is given back; `exported`: the budget counts an export;
    `timing` (made when the handler began) records the wait, the computing and the cache; `lane`:
    the device's lane, the same as the event's gradio lane (serving.event_options; by default a
    series or an export is heavy)."""
    timing = timing or Timing()
    serving.check_budget(kind, request.work(exported))
    timing.asked = time.monotonic()
    lane = lane or ("heavy" if kind == "series" or exported else "light")
    with serving.device.turn(serving.limits.time_limit, serving.stopped_hint(kind), lane) as turn:
        timing.turn = turn
        callback = step_callback(turn, progress, request.sampling.steps, kind)
        result, cached = state.compute(kind, request.source, request.sampling, request.edit, request.series,
                                       callback, request.image)
        timing.result_ready(result, cached)
    timing.released = time.monotonic()
    return result if finish is None else finish(result)


def on_device(kind: str, fn, *args, lane: str = "light"):
    """`fn(*args)` (writing files of a result already made) while holding the device, within the
    time limit: it competes for the same cores as the computations."""
    with serving.device.turn(serving.limits.time_limit, serving.stopped_hint(kind), lane):
        return fn(*args)
