"""The benchmark runs ours and the stock diffusers pipeline on the same (micro) weights."""

from pipelines.evaluation.benchmark import NaivePipeline, bench
from pipelines.model.loading import load_model
from pipelines.editing.requests import Sampling


def test_naive_pipeline_is_the_stock_diffusers_call(micro_model_folder):
    model = load_model(str(micro_model_folder))
    image = NaivePipeline(model).image(Sampling("a", "b", seed=1, steps=2), "a", "b")
    assert image.shape == (64, 64, 3)


def test_bench_reports_times_and_ratios(micro_model_folder):
    model = load_model(str(micro_model_folder))
    model.info.defaults["steps"] = 3
    report = bench(model, repeats=1)
    assert all(v > 0 for v in report["ours"].values())
    assert set(report["speedup_vs_naive"]) == {"pair_cold", "reedit", "series16_latent", "series16_embedding"}
    assert report["peak_memory_mb"] > 0
