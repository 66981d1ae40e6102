"""Speed of MedEdit's pipeline against the naive way, on the same weights in the same run.

The naive way is the stock diffusers `PixArtAlphaPipeline`, fed the same joined anatomy+style
tokens (it has one guidance scale and no prefix reuse), one call per image: a pair is two calls, a
slider re-edit one more call, a 16-frame series sixteen calls along the tokens from the neutral
prompts to the edited ones. Every one of those calls is made and timed, none extrapolated.

On a shared machine the load drifts while the benchmark runs, so the two are measured alike: one
untimed warm-up round of every operation, then `repeats` rounds in which each operation runs
MedEdit's way and the stock way back to back, who goes first alternating from round to round.
Each figure is the median over the rounds with its range (min-max); the speedup is the stock
median over MedEdit's, with the range of the rounds' own ratios.
"""

import itertools
import resource
import statistics
import time

import numpy as np
import torch
from diffusers import PixArtAlphaPipeline

from pipelines.editing.pipeline import MedEditPipeline, edited_prompts
from pipelines.editing.requests import Edit, Sampling, Series
from pipelines.model import conditioners
from pipelines.model.conditioners import Branches
from pipelines.model.loaded import LoadedModel

SOURCE = Sampling("a dermoscopic image with melanocytic nevus (NV), a small round lesion in the centre",
                  "fair skin, even lighting", seed=7)
EDIT = dict(to_style="fair skin, even lighting, with hairs visible on skin")
SLIDER = "hair"  # re-edits move it to a new value each time, so no call repeats an earlier one
FRAMES = 16


def timed(fn, *args, **kwargs) -> float:
    began = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - began


class NaivePipeline:
    """The stock pipeline on our weights, one call per image."""

    def __init__(self, model: LoadedModel):
        self.model = model
        self.stock = PixArtAlphaPipeline(tokenizer=None, text_encoder=None, vae=model.vae,
                                         transformer=model.transformer, scheduler=model.scheduler)
        self.stock.set_progress_bar_config(disable=True)

    def conditions(self, anatomy: str, style: str) -> Branches:
        return conditioners.prompt_branches(self.model.conditioner.encode, anatomy, style,
                                            joined=self.model.info.joined)

    def call(self, s: Sampling, cond: Branches, output_type: str = "np"):
        """One stock call: the full prompt's tokens against the null ones, at one guidance scale."""
        size = self.model.info.image_size
        return self.stock(prompt=None, negative_prompt=None,
                          prompt_embeds=cond.tokens[:, 2], prompt_attention_mask=cond.mask[:, 2],
                          negative_prompt_embeds=cond.tokens[:, 0],
                          negative_prompt_attention_mask=cond.mask[:, 0],
                          guidance_scale=s.style_scale, num_inference_steps=s.steps, height=size,
                          width=size, use_resolution_binning=False, output_type=output_type,
                          generator=torch.Generator().manual_seed(s.seed)).images[0]

    def image(self, s: Sampling, anatomy: str, style: str, output_type: str = "np"):
        return self.call(s, self.conditions(anatomy, style), output_type)

    def series(self, s: Sampling, edited: tuple[str, str], frames: int = FRAMES) -> list[np.ndarray]:
        """Frames regenerated one by one along a straight line from the neutral tokens to the
        edited ones."""
        neutral, target = self.conditions(s.anatomy, s.style), self.conditions(*edited)
        mask = torch.maximum(neutral.mask, target.mask)
        return [self.call(s, Branches(torch.lerp(neutral.tokens, target.tokens, float(t)), mask))
                for t in torch.linspace(0, 1, frames)]


class Operations:
    """Each benchmarked operation, MedEdit's way and the stock way: name -> (ours, stock, stock calls)."""

    def __init__(self, model: LoadedModel, frames: int = FRAMES):
        defaults = model.info.defaults
        self.model, self.defaults, self.frames = model, defaults, frames
        self.s = Sampling.with_defaults(defaults, SOURCE.anatomy, SOURCE.style, SOURCE.seed)
        self.e = Edit.with_defaults(defaults, **EDIT)
        self.stock = NaivePipeline(model)
        self.reeditor = MedEditPipeline(model)  # keeps the neutral run: a re-edit reruns the tail only
        self.reeditor.edit(self.s, self.e)
        # a new value for each re-edit, within the shipped model's hair range (mededit.json)
        self.slider = itertools.cycle(np.linspace(0.25, 1.0, 101))

    def table(self) -> dict:
        s, e, edited, frames = self.s, self.e, edited_prompts(self.s, self.e), self.frames
        fresh = lambda: MedEditPipeline(self.model)  # noqa: E731  (empty caches: the prefix is timed too)
        return {
            "pair": (lambda: fresh().edit(s, e),
                     lambda: (self.stock.image(s, s.anatomy, s.style), self.stock.image(s, *edited)), 2),
            "reedit": (self.reedit, lambda: self.stock.image(s, *edited), 1),
            f"series{frames}_latent": (lambda: fresh().series(s, e, Series(frames, "latent")),
                                       lambda: self.stock.series(s, edited, frames), frames),
            f"series{frames}_embedding": (lambda: fresh().series(s, e, Series(frames, "embedding")),
                                          lambda: self.stock.series(s, edited, frames), frames),
        }

    def reedit(self):
        sliders = {SLIDER: round(float(next(self.slider)), 4)}
        return self.reeditor.edit(self.s, Edit.with_defaults(self.defaults, **EDIT, sliders=sliders))


def spread(values: list[float], digits: int = 4) -> dict:
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits)}


def schedule(names, repeats: int) -> list[tuple[str, str, bool]]:
    """The order of the calls: (operation, "ours" or "stock", timed). A warm-up round first, then
    per round each operation both ways back to back, who goes first alternating by round."""
    calls = []
    for r in range(-1, repeats):  # -1: the warm-up round, not timed
        first, second = ("ours", "stock") if r % 2 == 0 else ("stock", "ours")
        calls += [(name, who, r >= 0) for name in names for who in (first, second)]
    return calls


def bench(model: LoadedModel, repeats: int = 3, frames: int = FRAMES) -> dict:
    operations = Operations(model, frames)
    table = operations.table()
    times = {name: {"ours": [], "stock": []} for name in table}
    for name, who, counted in schedule(list(table), repeats):
        seconds = timed(table[name][0 if who == "ours" else 1])
        if counted:
            times[name][who].append(seconds)
    report = {}
    for name, t in times.items():
        ratios = [stock / ours for ours, stock in zip(t["ours"], t["stock"])]  # paired by round
        report[name] = {"ours_s": spread(t["ours"]), "stock_s": spread(t["stock"]),
                        "stock_calls": table[name][2],
                        "speedup": {"median": round(statistics.median(t["stock"]) / statistics.median(t["ours"]), 3),
                                    "min": round(min(ratios), 3), "max": round(max(ratios), 3)}}
    return {"model_id": model.model_id, "model_revision": model.revision, "image_size": model.image_size,
            "steps": operations.s.steps,
            "swap_at": operations.e.swap_at, "locality": operations.e.locality,
            "threads": torch.get_num_threads(), "repeats": repeats,
            "order": "one warm-up round, then per round each operation ours and stock back to back, "
                     "who goes first alternating",
            "operations": report,
            "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
