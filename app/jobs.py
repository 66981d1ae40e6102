"""Running one request: its budget checked before any work, then its computation on the shared
device (taking turns between steps and between decoded frames, stopped at the time limit), then
its files written."""

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
        turn.between_steps()
        if progress is None:
            return
        if decoding is None:
            progress((min(step, steps), steps), desc=what, unit="steps")
        else:
            progress((step, decoding), desc=f"{what}: decoding", unit="frames")
    return after_step


def run(kind: str, request: Request, progress=None, finish=None, exported: bool = False,
        timing: Timing | None = None):
    """The result of a generate, edit or series `request` (`kind`), passed through `finish` (which
    writes its files) while the device is still held; `exported`: the budget counts an export;
    `timing` (made when the handler began) records the wait, the computing and the cache."""
    timing = timing or Timing()
    serving.check_budget(kind, request.work(exported))
    timing.asked = time.monotonic()
    lane = "heavy" if kind == "series" or exported else "light"  # the gradio lanes' split (serving.py)
    with serving.device.turn(serving.limits.time_limit, serving.stopped_hint(kind), lane) as turn:
        timing.turn = turn
        callback = step_callback(turn, progress, request.sampling.steps, kind)
        result, cached = state.compute(kind, request.source, request.sampling, request.edit, request.series,
                                       callback, request.image)
        timing.result_ready(result, cached)
        if finish is None:
            return result
        turn.between_steps()  # writing the files is a step too: a waiting request may go first
        return finish(result)


def on_device(kind: str, fn, *args, lane: str = "light"):
    """`fn(*args)` (writing files of a result already made) while holding the device, within the
    time limit: it competes for the same cores as the computations."""
    with serving.device.turn(serving.limits.time_limit, serving.stopped_hint(kind), lane):
        return fn(*args)
