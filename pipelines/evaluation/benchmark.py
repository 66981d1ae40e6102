"""Speed of MedEdit's pipeline against the naive way, on the same weights in the same run.

The naive way is the stock diffusers `PixArtAlphaPipeline` called once per image, fed the same
joined anatomy+style tokens (it has one guidance scale and no prefix reuse): a pair is two calls,
a slider re-edit one more call, a 16-frame series sixteen calls.
"""

import resource
import statistics
import time

import torch
from diffusers import PixArtAlphaPipeline

from pipelines.model import conditioners
from pipelines.editing.pipeline import MedEditPipeline
from pipelines.model.loaded import LoadedModel
from pipelines.editing.requests import Edit, Sampling, Series

SOURCE = Sampling("a dermoscopic image with melanocytic nevus (NV), a small round lesion in the centre",
                  "fair skin, even lighting", seed=7)
EDIT = dict(to_style="fair skin, even lighting, with hairs visible on skin")


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

    def image(self, s: Sampling, anatomy: str, style: str, output_type: str = "np"):
        cond = conditioners.prompt_branches(self.model.conditioner.encode, anatomy, style,
                                            joined=self.model.info.joined)
        size = self.model.info.image_size
        return self.stock(prompt=None, negative_prompt=None,
                          prompt_embeds=cond.tokens[:, 2], prompt_attention_mask=cond.mask[:, 2],
                          negative_prompt_embeds=cond.tokens[:, 0],
                          negative_prompt_attention_mask=cond.mask[:, 0],
                          guidance_scale=s.style_scale, num_inference_steps=s.steps, height=size,
                          width=size, use_resolution_binning=False, output_type=output_type,
                          generator=torch.Generator().manual_seed(s.seed)).images[0]


def bench(model: LoadedModel, repeats: int = 3) -> dict:
    defaults = model.info.defaults
    s = Sampling.with_defaults(defaults, SOURCE.anatomy, SOURCE.style, SOURCE.seed)
    e = Edit.with_defaults(defaults, **EDIT)
    ours, naive = {}, {}

    # 1. Cold pair: fresh caches, neutral + edited.
    cold = []
    for _ in range(repeats):
        pipeline = MedEditPipeline(model)
        cold.append(timed(pipeline.edit, s, e))
    ours["pair_cold_s"] = statistics.median(cold)
    # 2. Slider re-edits from the cached neutral run.
    ours["reedit_s"] = statistics.median(
        timed(pipeline.edit, s, Edit.with_defaults(defaults, **EDIT, sliders={"hair": x}))
        for x in (0.5, 1.0, 1.5, 2.0))
    # 3. 16-frame series in both modes (fresh caches, so each includes its prefix).
    for mode in ("latent", "embedding"):
        ours[f"series16_{mode}_s"] = statistics.median(
            timed(MedEditPipeline(model).series, s, e, Series(16, mode)) for _ in range(repeats))

    stock = NaivePipeline(model)
    one = statistics.median(timed(stock.image, s, s.anatomy, e.to_style) for _ in range(repeats))
    naive["pair_cold_s"] = 2 * one
    naive["reedit_s"] = one
    naive["series16_s"] = 16 * one
    naive["image_s"] = one

    ratios = {"pair_cold": naive["pair_cold_s"] / ours["pair_cold_s"],
              "reedit": naive["reedit_s"] / ours["reedit_s"],
              "series16_latent": naive["series16_s"] / ours["series16_latent_s"],
              "series16_embedding": naive["series16_s"] / ours["series16_embedding_s"]}
    return {"model_id": model.model_id, "model_revision": model.revision, "steps": s.steps,
            "swap_at": e.swap_at, "locality": e.locality, "threads": torch.get_num_threads(),
            "ours": ours, "naive": naive, "speedup_vs_naive": ratios,
            "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
