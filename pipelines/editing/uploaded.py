"""MedEditPipeline's methods for an image the user brings, as arrays (the CLI, the app, the API).

    pipeline.edit_image(image, Sampling(anatomy, style, seed), Edit(...), Regions(edit, keep))
    pipeline.series_image(image, sampling, edit, Series(...), regions)

`image` is [H, W, 3] (or [H, W], or RGBA) uint8; any size is resized and centre-cropped to the
model's (data.uploads.fit_pixels), and masks given at the image's own size go through the same
geometry. The Sampling's prompts are the image's source prompts (typed, or from
evaluation.describe), its seed draws the inversion's noise, its steps and scales are the
inversion's. The inversion (one pass of guided steps) is cached by the image's pixels and those
settings, so a slider, the swap point or a mask recomputes only the edit's tail and one decode.
Edits are one guidance term each (editing/terms.py): the typed edited prompts one term, every
slider another, its tokens moved by its own scale as for a generated image: adding (> 0) or
removing (< 0). Outside the region an edit acted in, the result keeps the upload's own pixels
(`paste_back`, default; EditResult.neutral is then the upload itself), or the decoded round trip.

Before any work the model's domain check judges the image (`domain_check`, set by whoever makes
the pipeline: evaluation/domain.py `with_domain_check`, as the command line and the app do; this
layer does not import evaluation/): one of no modality the model knows is refused (DomainRefused)
unless `edit_anyway`; its verdict is in the result's settings ("domain", which every export's
provenance carries) and, when it is not plainly in the model's world, in the notes.
"""

import hashlib
import time

import numpy as np
import torch

from pipelines.core.errors import MedEditError
from pipelines.data.uploads import as_rgb_array, fit_mask, fit_pixels
from pipelines.editing.interpolation import bezier, bezier_keep_norm
from pipelines.editing.inversion import Inversion, encode, invert
from pipelines.editing.regions import Regions, paste_outside
from pipelines.editing.requests import Edit, Sampling, Series
from pipelines.editing.results import EditResult, SeriesResult
from pipelines.editing.terms import Term, edit_inverted
from pipelines.model import conditioners
from pipelines.model.loaded import decode

INVERSION = "edit-friendly inversion, DPM-Solver++ 2M (stochastic)"


class UploadedImages:
    """Mixed into MedEditPipeline: needs model, inversions (an LRU), neutral_branches,
    edited_branches, settings and notes."""

    domain_check = None  # an evaluation.domain.DomainCheck; None: images are not judged

    def judged(self, image: np.ndarray, edit_anyway: bool) -> tuple[dict, list[str]]:
        """The domain check's record of the image and the warning its edit carries (raises
        DomainRefused for an image it refuses, unless edit_anyway)."""
        if self.domain_check is None:
            return {}, []
        verdict = self.domain_check.gate(image, edit_anyway)
        return {"domain": verdict.record()}, [] if verdict.warning is None else [f"warning: {verdict.warning}"]

    def prepared(self, image, regions: Regions | None) -> tuple[np.ndarray, Regions | None, list[str]]:
        """The image at the model's size, and the masks fitted with it."""
        size = self.model.info.image_size
        rgb = as_rgb_array(image)
        fitted, notes = fit_pixels(rgb, size)
        if regions is not None and not regions.empty:
            shape = rgb.shape[:2]
            for name, mask in (("edit mask", regions.edit), ("keep mask", regions.keep)):
                if mask is not None and mask.shape not in (shape, (size, size)):
                    raise MedEditError(f"the {name} is {mask.shape[1]}x{mask.shape[0]}; it must be the "
                                       f"image's size ({shape[1]}x{shape[0]}) or the model's ({size}x{size})")
            fit = lambda m: None if m is None else fit_mask(m, size)  # noqa: E731
            regions = Regions(fit(regions.edit), fit(regions.keep))
        return fitted, regions, notes

    @staticmethod
    def pixels_sha256(image: np.ndarray) -> str:
        return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()

    @staticmethod
    def inversion_key(digest: str, s: Sampling) -> tuple:
        """Everything an inversion depends on."""
        return digest, s.seed, s.steps, s.anatomy, s.style, s.anatomy_scale, s.style_scale

    def inverted(self, image: np.ndarray, s: Sampling, progress=None) -> tuple[Inversion, np.ndarray, bool]:
        """The image inverted under the source prompts, and its reconstruction decoded (from the
        cache when they are there)."""
        key = self.inversion_key(self.pixels_sha256(image), s)
        cached = self.inversions.get(key)
        if cached is not None:
            return (*cached, True)
        clean = encode(self.model.vae, torch.from_numpy(image.copy())[None])
        clean = clean.to(self.model.transformer.device, self.model.transformer.dtype)
        inversion = invert(self.model.transformer, self.model.scheduler, clean, s.steps,
                           self.neutral_branches(s), s.anatomy_scale, s.style_scale, s.seed, progress)
        reconstruction = decode(self.model, inversion.states[-1].latents, progress)[0].numpy()
        return (*self.inversions.put(key, (inversion, reconstruction)), False)

    def edit_terms(self, s: Sampling, e: Edit) -> list[Term]:
        """The typed edited prompts as one term; each slider as its own (the source prompts with
        that slider alone applied)."""
        terms = []
        if e.to_anatomy or e.to_style:
            terms.append(Term("prompts", self.edited_branches(s, Edit(e.to_anatomy, e.to_style))))
        for name, scale in e.sliders.items():
            attribute = self.model.info.slider(name, scale)  # the model's own range
            if scale == 0:
                continue
            sliders = {attribute["channel"]: [(attribute["phrase"], scale)]}
            branches = conditioners.prompt_branches(self.channel, s.anatomy, s.style, sliders,
                                                    self.model.info.joined)
            terms.append(Term(name, branches))
        return terms

    def region(self, regions: Regions | None) -> torch.Tensor | None:
        if regions is None:
            return None
        latent = self.model.latent_shape[1:]
        return regions.latent(latent, self.model.transformer.device, self.model.transformer.dtype)

    @torch.no_grad()
    def edit_image(self, image, s: Sampling, e: Edit, regions: Regions | None = None, progress=None,
                   paste_back: bool = True, edit_anyway: bool = False) -> EditResult:
        """An uploaded image and its edit. With `paste_back` (default), outside the region the
        edit acted in the pixels are the upload's own (regions.paste_outside), and
        EditResult.neutral is the upload at the model's size; without, the whole image is decoded
        and .neutral is the reconstruction (the autoencoder's round trip: what the source prompts
        give back)."""
        began = time.perf_counter()
        image, regions, notes = self.prepared(image, regions)
        judged, warnings = self.judged(image, edit_anyway)
        terms = self.edit_terms(s, e)  # before inverting: a slider out of the model's range is refused at once
        inversion, reconstruction, cached = self.inverted(image, s, progress)
        final, changed = edit_inverted(self.model.transformer, inversion, e.swap_step(s.steps),
                                       self.neutral_branches(s), terms, s.anatomy_scale, s.style_scale,
                                       e.locality, self.region(regions), progress, e.refresh_steps(s.steps))
        if final is inversion.states[-1]:  # nothing to edit: the reconstruction is the result
            edited = reconstruction.copy()
        else:
            edited = decode(self.model, final.latents, progress)[0].numpy()
        if paste_back:
            neutral, edited = image.copy(), paste_outside(image, edited, changed, regions and regions.keep)
        else:
            neutral = reconstruction.copy()
        settings = self.image_settings(s, e, image, regions, terms, paste_back, judged)
        notes = notes + self.notes((s.anatomy, s.style), (e.to_anatomy or s.anatomy, e.to_style or s.style))
        notes += warnings
        return EditResult(neutral, edited, settings, notes, time.perf_counter() - began, cached)

    @torch.no_grad()
    def series_image(self, image, s: Sampling, e: Edit, series: Series, regions: Regions | None = None,
                     progress=None, paste_back: bool = True, edit_anyway: bool = False) -> SeriesResult:
        """Frames from the upload to the edit: latent mode, the paper's Bezier curve over edits at
        swaps from weak to strong; embedding mode, every edit's weight rising along a curve (bend:
        -1 late .. 1 early), all frames' tails in one batch. `paste_back` as in edit_image, over
        the union of the frames' regions."""
        began = time.perf_counter()
        image, regions, notes = self.prepared(image, regions)
        judged, warnings = self.judged(image, edit_anyway)
        terms, times = self.edit_terms(s, e), torch.linspace(0, 1, series.frames)  # refused before inverting
        inversion, _, _ = self.inverted(image, s, progress)
        source, region = self.neutral_branches(s), self.region(regions)
        scales, swap = (s.anatomy_scale, s.style_scale), e.swap_step(s.steps)
        tail = lambda swap, terms: edit_inverted(self.model.transformer, inversion, swap, source, terms,  # noqa: E731
                                                 *scales, e.locality, region, progress, e.refresh_steps(s.steps))
        if series.mode == "latent":
            tails = [tail(k, terms) for k in series.latent_swaps(s.steps, swap)]
            control = torch.cat([inversion.states[-1].latents] + [final.latents for final, _ in tails])
            latents, changed = bezier_keep_norm(control, times), [c for _, c in tails]
        else:
            rise = bezier(torch.tensor([0.0, 0.5 + 0.5 * series.bend, 1.0]), times)  # [T]
            final, changed = tail(swap, [Term(t.name, t.branches.repeat(len(times)), rise * t.weight) for t in terms])
            latents, changed = final.latents.expand(len(times), -1, -1, -1), [changed]
        frames = [f.numpy() for f in decode(self.model, latents, progress)]
        if paste_back:
            union = None if any(c is None for c in changed) else torch.cat(changed).amax(0, keepdim=True)
            frames = [paste_outside(image, f, union, regions and regions.keep) for f in frames]
        settings = {**self.image_settings(s, e, image, regions, terms, paste_back, judged),
                    "frames": series.frames, "mode": series.mode, "control_points": series.control_points,
                    "bend": series.bend}
        notes = notes + self.notes((e.to_anatomy or s.anatomy, e.to_style or s.style)) + warnings
        return SeriesResult(frames, times.tolist(), settings, notes, time.perf_counter() - began)

    def image_settings(self, s: Sampling, e: Edit, image: np.ndarray, regions: Regions | None,
                       terms: list[Term], paste_back: bool, judged: dict) -> dict:
        """The edit's settings, with what the image was: its pixels' sha256 (the caller adds the
        file's), the domain check's verdict, how it was inverted, each term's weight, the masks, and
        what lies outside the edit's region (the upload's pixels, or the decoded round trip)."""
        return {**self.settings(s, e), "source": "upload", "image_sha256": self.pixels_sha256(image),
                "inversion": INVERSION, "inversion_seed": s.seed, "refresh": e.refresh,
                "terms": [{"name": t.name, "weight": float(t.weight)} for t in terms],
                "regions": {} if regions is None else regions.record(),
                "outside_the_edit": "the upload's pixels" if paste_back else "the autoencoder's round trip",
                **judged}
