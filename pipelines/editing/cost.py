"""How much work a request is, counted before it runs, so a server can refuse what it cannot
finish in time (the command line has no such limit).

The unit is one transformer pass: one image through one guidance branch at one denoising step.
Decoding a latent and writing an exported frame are counted in passes too, at what they cost the
embedded model on a CPU. Counts are upper bounds: caches (the neutral run, earlier results) only
make a request cheaper.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.editing.requests import Edit, Sampling, Series

PASSES_PER_DECODE = 4  # the embedded model on a CPU: a 64-px decode ~ 3.5 passes
PASSES_PER_EXPORTED_FRAME = 1  # a frame into PNG, DICOM, GIF and WebP: ~4 ms


@dataclass(frozen=True)
class Work:
    passes: int  # transformer passes
    decodes: int  # latents decoded to images
    exported: int = 0  # frames written into an export
    detail: str = ""  # where the passes come from, for a message

    @property
    def units(self) -> int:
        return self.passes + PASSES_PER_DECODE * self.decodes + PASSES_PER_EXPORTED_FRAME * self.exported


def branches(s: Sampling) -> int:
    """Guidance branches per image and step: two when the scales are equal (the anatomy-only
    branch cancels out, as sampling.guided_noise uses), else three."""
    return 2 if s.anatomy_scale == s.style_scale else 3


def _tail(s: Sampling, e: Edit, batch: int = 1) -> int:
    """Passes of an edit's tail from its swap step (and of the edit mask at the swap, when local)."""
    after = s.steps - e.swap_step(s.steps)
    mask = branches(s) if e.locality > 0 and after > 0 else 0
    return after * branches(s) * batch + mask


def generate_work(s: Sampling) -> Work:
    return Work(s.steps * branches(s), 1, detail=f"{s.steps} steps x {branches(s)} guidance branches")


def edit_work(s: Sampling, e: Edit) -> Work:
    after = s.steps - e.swap_step(s.steps)
    return Work(s.steps * branches(s) + _tail(s, e), 2,
                detail=f"{s.steps} + {after} steps x {branches(s)} guidance branches")


def series_work(s: Sampling, e: Edit, series: Series) -> Work:
    """Latent mode: one tail per control point after the neutral one, each at most as long as the
    edit's own (its swaps are later). Embedding mode: every frame's tail in one batch."""
    after = s.steps - e.swap_step(s.steps)
    if series.mode == "latent":
        tails = series.control_points - 1
        passes = s.steps * branches(s) + tails * _tail(s, e)
        detail = f"{tails} control points x up to {after} steps"
    else:
        passes = s.steps * branches(s) + _tail(s, e, series.frames)
        detail = f"{series.frames} frames x {after} steps"
    return Work(passes, series.frames, detail=f"{detail} x {branches(s)} guidance branches")


def request_work(s: Sampling, e: Edit | None = None, series: Series | None = None, exported: bool = False) -> Work:
    """The work of a generate (no edit), an edit, or a series; `exported`: its frames written too."""
    if e is None:
        return generate_work(s)
    work = edit_work(s, e) if series is None else series_work(s, e, series)
    if not exported:
        return work
    frames = 2 if series is None else series.frames
    return Work(work.passes, work.decodes, frames, work.detail)
