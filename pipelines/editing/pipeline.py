"""MedEditPipeline: generate, edit (swap at t) and Bezier series over one loaded model.

The neutral run and every edit share the noise and the steps before the swap. The neutral run
(kept after every step) and the encoded prompts are held in small LRU caches keyed by everything
they depend on, so moving a slider, or the swap point, recomputes only the edit's tail and one
decode. A local edit (`Edit.locality` > 0) changes only where the edited prompts act.

An image the user brings (`edit_image`, `series_image`: [H, W, 3] uint8 arrays) is inverted
under its source prompts (editing/inversion.py) instead of sampled from noise; the inversion is
cached like the neutral run, and its edits are one guidance term per edit (editing/terms.py),
bounded by an edit mask and a keep mask (editing/regions.py).

`progress`, where a method takes one, is called as `progress(step)` after each denoising step and
as `progress(done, total)` after each latent decoded (model/loaded.decode), so that a server can
stop a request, or let another go first, between any two of them.
"""

import time

import numpy as np
import torch

from pipelines.model import conditioners
from pipelines.core.errors import MedEditError
from pipelines.editing.interpolation import bezier, bezier_keep_norm
from pipelines.model.loaded import LoadedModel, decode
from pipelines.core.lru import LRU
from pipelines.editing.requests import Edit, Sampling, Series
from pipelines.editing.results import EditResult, SeriesResult
from pipelines.editing.sampling import Branches, Prefix, edit_tail, trajectory
from pipelines.editing.uploaded import UploadedImages


def edited_prompts(s: Sampling, e: Edit) -> tuple[str, str]:
    """An edit's (anatomy, style) prompts: an empty one keeps the source's."""
    return e.to_anatomy or s.anatomy, e.to_style or s.style


class MedEditPipeline(UploadedImages):
    def __init__(self, model: LoadedModel, cache_size: int = 8):
        self.model = model
        self.channel = conditioners.cached(model.conditioner.encode, 256)
        self.runs = LRU(cache_size)  # a run holds steps + 1 states: ~1 MB here, ~16 MB for PixArt-1024
        self.neutral_images = LRU(cache_size)  # decoded once per run: a re-edit decodes only its edit
        self.inversions = LRU(cache_size)  # uploaded images inverted, with their decoded reconstruction

    # Conditioning ------------------------------------------------------------------------------
    def neutral_branches(self, s: Sampling) -> Branches:
        return conditioners.prompt_branches(self.channel, s.anatomy, s.style, joined=self.model.info.joined)

    def edited_branches(self, s: Sampling, e: Edit) -> Branches:
        by_channel = {"anatomy": [], "style": []}
        for name, scale in e.sliders.items():
            attribute = self.model.info.slider(name, scale)  # the model's own range
            by_channel[attribute["channel"]].append((attribute["phrase"], scale))
        return conditioners.prompt_branches(self.channel, *edited_prompts(s, e), by_channel,
                                            self.model.info.joined)

    def notes(self, *pairs: tuple[str, str]) -> list[str]:
        """What was cut from over-long prompts, given as (anatomy, style) pairs."""
        notes = [note for anatomy, style in pairs
                 for note in conditioners.cut_notes(self.channel, anatomy, style, self.model.info.joined)]
        return list(dict.fromkeys(notes))  # a prompt kept by the edit is reported once

    # Sampling ----------------------------------------------------------------------------------
    def noise(self, seed: int) -> torch.Tensor:
        # Drawn on the CPU whatever the device, so a seed means the same noise everywhere.
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn((1, *self.model.latent_shape), generator=generator)
        return noise.to(self.model.transformer.device, self.model.transformer.dtype)

    @staticmethod
    def run_key(s: Sampling) -> tuple:
        """Everything the neutral run depends on."""
        return s.seed, s.steps, s.anatomy, s.style, s.anatomy_scale, s.style_scale

    def neutral_run(self, s: Sampling, callback=None) -> tuple[list[Prefix], bool]:
        """The neutral run, kept after every step (from the cache when it is there)."""
        cached = self.runs.get(self.run_key(s))
        if cached is not None:
            return cached, True
        run = trajectory(self.model.transformer, self.model.scheduler, s.steps, self.noise(s.seed),
                         self.neutral_branches(s), s.anatomy_scale, s.style_scale, callback)
        return self.runs.put(self.run_key(s), run), False

    def neutral_image(self, s: Sampling, run: list[Prefix], progress=None) -> np.ndarray:
        """The neutral run's final image [H, W, 3] uint8, decoded once (a copy: callers may write)."""
        image = self.neutral_images.get(self.run_key(s))
        if image is None:
            image = decode(self.model, run[-1].latents, progress)[0].numpy()
            image = self.neutral_images.put(self.run_key(s), image)
        return image.copy()

    def edited_latents(self, s: Sampling, e: Edit, run: list[Prefix], swap: int, edited: Branches,
                       callback=None) -> torch.Tensor:
        return edit_tail(self.model.transformer, run, swap, self.neutral_branches(s), edited,
                         s.anatomy_scale, s.style_scale, e.locality, callback).latents

    @torch.no_grad()
    def generate(self, s: Sampling, progress=None) -> np.ndarray:
        run, _ = self.neutral_run(s, progress)
        return self.neutral_image(s, run, progress)

    @torch.no_grad()
    def edit(self, s: Sampling, e: Edit, progress=None) -> EditResult:
        began = time.perf_counter()
        branches = self.edited_branches(s, e)  # first: a slider out of the model's range is refused at once
        # 1. The neutral run, shared by every edit of the same source.
        run, cached = self.neutral_run(s, progress)
        # 2. The edited tail, branching off it at the swap step.
        edited = self.edited_latents(s, e, run, e.swap_step(s.steps), branches, progress)
        # 3. Decode the edit; the neutral image was decoded with its run.
        neutral, image = self.neutral_image(s, run, progress), decode(self.model, edited, progress)[0].numpy()
        settings = self.settings(s, e)
        notes = self.notes((s.anatomy, s.style), edited_prompts(s, e))
        return EditResult(neutral, image, settings, notes, time.perf_counter() - began, cached)

    @torch.no_grad()
    def series(self, s: Sampling, e: Edit, series: Series, progress=None) -> SeriesResult:
        began = time.perf_counter()
        times = torch.linspace(0, 1, series.frames)
        if series.mode == "latent":
            latents = self.latent_series(s, e, series, times, progress)
        else:
            latents = self.embedding_series(s, e, series, times, progress)
        frames = [f.numpy() for f in decode(self.model, latents, progress)]
        settings = {**self.settings(s, e), "frames": series.frames, "mode": series.mode,
                    "control_points": series.control_points, "bend": series.bend}
        notes = self.notes(edited_prompts(s, e))
        return SeriesResult(frames, times.tolist(), settings, notes, time.perf_counter() - began)

    def latent_series(self, s, e, series, times, progress):
        """The paper's mode: final latents of swaps from weak (late) to strong (the edit's swap
        point) are the control points of one Bezier curve that starts at the neutral latent."""
        strongest = e.swap_step(s.steps)
        swaps = series.latent_swaps(s.steps, strongest)  # weak to strong
        edited = self.edited_branches(s, e)  # first: a slider out of the model's range is refused at once
        run, _ = self.neutral_run(s, progress)
        control = torch.cat([run[-1].latents] +  # [P, C, h, w], neutral first
                            [self.edited_latents(s, e, run, swap, edited, progress) for swap in swaps])
        return bezier_keep_norm(control, times)

    def embedding_series(self, s, e, series, times, progress):
        """A curve from the neutral to the edited tokens; every frame branches off the neutral run
        at the swap step, all frames' tails in one batch."""
        neutral, edited = self.neutral_branches(s), self.edited_branches(s, e)
        if neutral.tokens.shape[2] != edited.tokens.shape[2]:
            raise MedEditError("neutral and edited prompts must encode to the same token length")
        middle = neutral.tokens + (0.5 + 0.5 * series.bend) * (edited.tokens - neutral.tokens)
        control = torch.cat([neutral.tokens, middle, edited.tokens])  # [3, 3, L, D]
        tokens = bezier(control, times)  # [T, 3, L, D]
        mask = torch.maximum(neutral.mask, edited.mask).expand(len(times), -1, -1)
        run, _ = self.neutral_run(s, progress)
        return edit_tail(self.model.transformer, run, e.swap_step(s.steps), neutral, edited,
                         s.anatomy_scale, s.style_scale, e.locality, progress,
                         frames=Branches(tokens, mask)).latents

    def settings(self, s: Sampling, e: Edit) -> dict:
        return {"model_id": self.model.model_id, "model_revision": self.model.revision,
                "anatomy": s.anatomy, "style": s.style, "to_anatomy": e.to_anatomy,
                "to_style": e.to_style, "sliders": dict(e.sliders), "swap_at": e.swap_at,
                "locality": e.locality, "swap_step": e.swap_step(s.steps), "seed": s.seed, "steps": s.steps,
                "anatomy_scale": s.anatomy_scale, "style_scale": s.style_scale}
