"""The benchmark runs ours and the stock diffusers pipeline on the same (micro) weights."""

import numpy as np
import torch

from pipelines.editing.pipeline import MedEditPipeline
from pipelines.editing.requests import Sampling
from pipelines.evaluation.benchmark import NaivePipeline, bench
from pipelines.model.loaded import decode
from pipelines.model.loading import load_model


def test_naive_pipeline_is_the_stock_diffusers_call(micro_model_folder):
    """With equal guidance scales MedEdit's two-scale guidance is classifier-free guidance, so the
    stock PixArtAlphaPipeline on the same weights draws exactly MedEdit's image: the benchmark
    compares two ways of computing the same thing."""
    model = load_model(str(micro_model_folder))
    s = Sampling("a dermoscopic image with melanoma (MEL)", "fair skin, with hairs visible on skin",
                 seed=1, steps=3)
    ours = MedEditPipeline(model).generate(s)
    naive = NaivePipeline(model)
    latents = naive.image(s, s.anatomy, s.style, output_type="latent")
    assert torch.equal(decode(model, latents[None])[0], torch.from_numpy(ours))  # the sampling loop, bitwise
    stock = naive.image(s, s.anatomy, s.style)  # diffusers' own decode and post-processing
    np.testing.assert_array_equal((stock * 255).round().astype(np.uint8), ours)


def test_bench_reports_times_and_ratios(micro_model_folder):
    model = load_model(str(micro_model_folder))
    model.info.defaults["steps"] = 3
    report = bench(model, repeats=1)
    assert all(v > 0 for v in report["ours"].values())
    assert set(report["speedup_vs_naive"]) == {"pair_cold", "reedit", "series16_latent", "series16_embedding"}
    assert report["peak_memory_mb"] > 0
