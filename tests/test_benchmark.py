"""The benchmark runs ours and the stock diffusers pipeline on the same (micro) weights, warmed up
and interleaved, every stock call made for real."""

import numpy as np
import pytest
import torch

from pipelines.editing.pipeline import MedEditPipeline
from pipelines.editing.requests import Sampling
from pipelines.evaluation.benchmark import NaivePipeline, bench, schedule
from pipelines.model.loaded import decode
from pipelines.model.loading import load_model


@pytest.fixture(scope="module")
def micro_model(micro_model_folder):
    return load_model(str(micro_model_folder))


def test_naive_pipeline_is_the_stock_diffusers_call(micro_model):
    """With equal guidance scales MedEdit's two-scale guidance is classifier-free guidance, so the
    stock PixArtAlphaPipeline on the same weights draws exactly MedEdit's image: the benchmark
    compares two ways of computing the same thing."""
    s = Sampling("a dermoscopic image with melanoma (MEL)", "fair skin, with hairs visible on skin",
                 seed=1, steps=3)
    ours = MedEditPipeline(micro_model).generate(s)
    naive = NaivePipeline(micro_model)
    latents = naive.image(s, s.anatomy, s.style, output_type="latent")
    assert torch.equal(decode(micro_model, latents[None])[0], torch.from_numpy(ours))  # the sampling loop, bitwise
    stock = naive.image(s, s.anatomy, s.style)  # diffusers' own decode and post-processing
    np.testing.assert_array_equal((stock * 255).round().astype(np.uint8), ours)


def test_the_naive_series_regenerates_every_frame(micro_model):
    s = Sampling("a dermoscopic image with melanoma (MEL)", "fair skin", seed=2, steps=2)
    frames = NaivePipeline(micro_model).series(s, (s.anatomy, "fair skin, with hairs visible on skin"), 3)
    assert len(frames) == 3 and not np.array_equal(frames[0], frames[-1])


def test_calls_are_warmed_up_and_interleaved_with_alternating_first():
    calls = schedule(["pair", "reedit"], 3)
    assert len(calls) == 2 * 2 * (3 + 1)
    warm_up, timed = calls[:4], calls[4:]
    assert not any(c[2] for c in warm_up) and all(c[2] for c in timed)
    assert {(name, who) for name, who, _ in warm_up} == {(n, w) for n in ("pair", "reedit") for w in ("ours", "stock")}
    pairs = [timed[i:i + 2] for i in range(0, len(timed), 2)]  # each operation both ways, back to back
    assert all(a[0] == b[0] and {a[1], b[1]} == {"ours", "stock"} for a, b in pairs)
    firsts = [a[1] for a, _ in pairs[::2]]  # who went first for "pair", round by round
    assert firsts == ["ours", "stock", "ours"]


def test_bench_reports_medians_ranges_and_speedups(micro_model_folder):
    model = load_model(str(micro_model_folder))
    model.info.defaults["steps"] = 2
    report = bench(model, repeats=1, frames=2)  # series of 2 frames: the same calls, fewer of them
    assert set(report["operations"]) == {"pair", "reedit", "series2_latent", "series2_embedding"}
    for op in report["operations"].values():
        for key in ("ours_s", "stock_s", "speedup"):
            assert 0 < op[key]["min"] <= op[key]["median"] <= op[key]["max"], (key, op)
        assert op["speedup"]["median"] == pytest.approx(op["stock_s"]["median"] / op["ours_s"]["median"],
                                                        rel=1e-2)
    assert [report["operations"][k]["stock_calls"] for k in ("pair", "reedit", "series2_latent")] == [2, 1, 2]
    assert report["repeats"] == 1 and report["peak_memory_mb"] > 0
