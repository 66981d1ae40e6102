"""How much work a request is, counted before it runs, so a server can refuse what it cannot
finish in time (the command line has no such limit).

The unit is one transformer pass: one image through one guidance branch at one denoising step.
Decoding a latent, encoding an upload and writing an exported frame are counted in passes too, at
what they cost the embedded model on a CPU. Counts are upper bounds: caches (the neutral run, an
upload's inversion, earlier results) only make a request cheaper. An uploaded image's edit or
series (image_work) is counted exactly as editing/uploaded.py runs it (tests/test_image_cost.py
counts a real run).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.editing.requests import Edit, Sampling, Series
from pipelines.editing.sampling import guidance_branches

PASSES_PER_DECODE = 4  # the embedded model on a CPU: a 64-px decode ~ 3.5 passes
PASSES_PER_ENCODE = 2  # an uploaded image into latents: ~0.45 of a decode (16 ms vs 38 ms measured)
PASSES_PER_EXPORTED_FRAME = 1  # a frame into PNG, DICOM, GIF and WebP: ~4 ms


@dataclass(frozen=True)
class Work:
    passes: int  # transformer passes
    decodes: int  # latents decoded to images
    exported: int = 0  # frames written into an export
    detail: str = ""  # where the passes come from, for a message
    encodes: int = 0  # images encoded to latents (an upload, before its inversion)

    @property
    def units(self) -> int:
        return (self.passes + PASSES_PER_DECODE * self.decodes + PASSES_PER_EXPORTED_FRAME * self.exported
                + PASSES_PER_ENCODE * self.encodes)


def branches(s: Sampling) -> int:
    """Guidance branches per image and step, as sampling runs them."""
    return len(guidance_branches(s.anatomy_scale, s.style_scale))


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
    return _exported(work, series) if exported else work


def _exported(work: Work, series: Series | None) -> Work:
    frames = 2 if series is None else series.frames
    return Work(work.passes, work.decodes, frames, work.detail, work.encodes)


# --- an image the user brings (editing/uploaded.py, editing/terms.py) ---------------------------

def term_count(e: Edit) -> int:
    """The guidance terms an edit of an upload has, as UploadedImages.edit_terms makes them: the
    typed edited prompts one, every slider away from 0 another."""
    return int(bool(e.to_anatomy or e.to_style)) + sum(1 for scale in e.sliders.values() if scale != 0)


def term_passes(s: Sampling, terms: int) -> int:
    """Passes per image and step of terms.TermGuidance: the source prompts' branches, and each
    term's branches but the null one, which all share."""
    return branches(s) + terms * (branches(s) - 1)


def _image_tail(s: Sampling, terms: int, swap: int, batch: int = 1, single: bool = False) -> int:
    """Passes of edit_inverted's tail from step `swap`: its first step predicts the source and every
    term at once (the implicit masks of a local edit come from those same predictions); one term
    at weight 1 (`single`) then needs only its own prompts' branches per step."""
    after = s.steps - swap
    if terms == 0 or after <= 0:
        return 0  # the inversion's own run: the image itself
    later = branches(s) if single else term_passes(s, terms)
    return batch * (term_passes(s, terms) + (after - 1) * later)


def image_work(s: Sampling, e: Edit, terms: int, series: Series | None = None, exported: bool = False) -> Work:
    """The work of an edit (no series) or a series of an uploaded image with `terms` guidance terms
    (term_count, or len(MedEditPipeline.edit_terms)): the upload encoded, inverted (steps x
    branches under the source prompts) and its reconstruction decoded; then the edit's tail, or
    a series' tails (latent mode: one per swap; embedding mode: every frame in one batch), and the
    frames decoded. Exact when nothing is cached: an inversion from the cache only makes it less."""
    swap, single = e.swap_step(s.steps), terms == 1
    inversion = s.steps * branches(s)
    if series is None:  # with no tail, the edited image is the reconstruction: no second decode
        tails = _image_tail(s, terms, swap, single=single)
        tail_count, frames = 1, int(tails > 0)
    elif series.mode == "latent":
        swaps = series.latent_swaps(s.steps, swap)
        tails = sum(_image_tail(s, terms, k, single=single) for k in swaps)
        tail_count, frames = len(swaps), series.frames
    else:
        tails = _image_tail(s, terms, swap, batch=series.frames)
        tail_count, frames = series.frames, series.frames
    detail = (f"{s.steps} inversion steps x {branches(s)} branches + {tail_count} x up to {s.steps - swap} "
              f"steps x ({branches(s)} + {terms} terms x {branches(s) - 1}) branches")
    work = Work(inversion + tails, 1 + frames, detail=detail, encodes=1)  # 1: the reconstruction
    return _exported(work, series) if exported else work
