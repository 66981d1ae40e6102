"""The limits only a server has, so that one client cannot hold the machine for the others (the
limits of a request itself are in pipelines/core/limits.py and hold everywhere, the CLI included).

- a budget of work per request, counted before it runs (pipelines/editing/cost.py);
- a time limit per request, enforced between denoising steps and decoded frames (app/device.py);
- /series and /export (from the UI or the API) share one concurrency limit, one at a time, so that a
  series' time limit is spent on its own work, not on another series'; /generate and /edit share
  another; all of them compute on one device, the two lanes taking turns of `lane_quantum` seconds
  while both wait (app/device.py): an edit waits behind a series for at most about one quantum and
  one step per quantum of its own, and a series keeps half the device however many edits come;
- a bounded queue; the number and bytes of responses whose files stay on disk; the number and
  bytes of uploads waiting for their request, and how long one is kept, named by a queued request
  or not;
- the CPU threads a computation uses (MEDEDIT_THREADS; torch's default, one per core, when unset).
  On a CPU that other processes share, 1 is far faster than 2: two threads meet at a barrier after
  every operation, and each barrier waits for both to be scheduled (here, with other jobs running,
  a largest series took 14-17 s on one thread and did not finish a 20-step, 16-frame one in 300 s
  on two). The thread count changes the last bits of a latent series, so it is left to the host.

Each can be changed for a bigger machine through an environment variable: MEDEDIT_ and the field's
name in capitals (MEDEDIT_REQUEST_BUDGET, MEDEDIT_TIME_LIMIT, ...).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from pipelines.core.errors import MedEditError
from pipelines.editing.cost import PASSES_PER_DECODE, Work

from app.device import Device

@dataclass(frozen=True)
class ServerLimits:
    # Work units per request (transformer passes, pipelines/editing/cost.py): about 12 s of the
    # embedded model on an idle 2-core CPU (5-6 ms a pass), 30-35 s on one core shared with other
    # work, so that two of the largest, taking turns with edits, still end within the time limit.
    request_budget: int = 2000
    time_limit: float = 60.0  # seconds per request, queueing not counted
    heavy_slots: int = 1  # /series and /export computing at once (more share the same lane's half)
    light_slots: int = 2  # /generate and /edit computing at once
    queue_size: int = 16  # requests waiting; more are refused as busy
    results_kept: int = 256  # responses whose files stay on disk (the oldest are removed)
    results_bytes: int = 1 << 30  # and at most these bytes of them (the newest is always kept)
    uploads_kept: int = 128  # uploads waiting for their request (the oldest are removed past it)
    upload_bytes: int = 1 << 30  # and at most these bytes of them (16 x the 64 MiB upload limit)
    upload_age: int = 600  # seconds an upload no request claimed is kept
    # Seconds an upload that no request in the queue names is kept: one the browser's editor sent
    # for an event it dropped (app/upload_ledger.py). A client sends its request once its files are up.
    upload_unnamed_age: int = 60
    threads: int | None = None  # torch's CPU threads per computation; None: torch's default
    lane_quantum: float = 1.0  # seconds of device time one lane holds while the other waits

    @classmethod
    def from_env(cls, environ=os.environ) -> "ServerLimits":
        values = {}
        for field in dataclasses.fields(cls):
            variable = f"MEDEDIT_{field.name.upper()}"
            text = environ.get(variable, "").strip()
            if not text:
                continue
            kind = float if field.type == "float" else int
            try:
                value = kind(text)
            except ValueError:
                raise MedEditError(f"{variable} must be a {kind.__name__} number, got {text!r}") from None
            if not value > 0:
                raise MedEditError(f"{variable} must be above 0, got {text!r}")
            values[field.name] = value
        return cls(**values)

limits = ServerLimits()  # set by configure() when the UI is built
device = Device()


def configure(new: ServerLimits) -> ServerLimits:
    """Use `new` from now on; returns the limits it replaces."""
    global limits
    old, limits = limits, new
    device.quantum = new.lane_quantum
    if new.threads is not None:  # one computation at a time (device.py): the process's setting is its own
        import torch  # here, not at the top: the limits are read by scripts that never compute
        torch.set_num_threads(new.threads)
    return old


def check_budget(kind: str, work: Work):
    """A clear refusal, before any work, of a request (a generate, edit or series) over the budget."""
    if work.units <= limits.request_budget:
        return
    exported = f", {work.exported} frames exported" if work.exported else ""
    what = "export" if work.exported else kind
    raise MedEditError(
        f"this {what} is too much work for this server: about {work.units:,} units ({work.detail} = "
        f"{work.passes:,} transformer passes, {work.decodes} decodes at {PASSES_PER_DECODE} each{exported}); "
        f"the limit is {limits.request_budget:,} per request. Ask for fewer frames or steps, or run it on your own "
        f"machine with the command line, which has no such limit: python -m pipelines {kind} --help")


def stopped_hint(kind: str) -> str:
    return (f"ask for fewer frames or steps, try again when the server is less busy, or run it with the "
            f"command line: python -m pipelines {kind} --help")


def event_options(heavy: bool) -> dict:
    """Gradio event options of a computing event: its shared concurrency limit."""
    if heavy:
        return dict(concurrency_id="heavy", concurrency_limit=limits.heavy_slots)
    return dict(concurrency_id="light", concurrency_limit=limits.light_slots)
