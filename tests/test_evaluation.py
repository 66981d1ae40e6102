"""The evaluator end to end on the micro model, judged by the shipped classifier."""

import json
import subprocess
import sys

import pytest

from pipelines.evaluation.evaluator import Evaluator, evaluate, pool_attribute_accuracy, prompts_for
from pipelines.model.loading import load_model


def test_prompts_differ_only_by_the_attribute_phrase():
    factors, (a, s), (a2, s2) = prompts_for("dermoscopy", "hair", 5)
    assert not factors["hair"] and a == a2
    assert "with hairs visible on skin" in s2 and "with hairs visible on skin" not in s


def test_report_has_every_figure_in_range(micro_model_folder):
    report = evaluate(load_model(str(micro_model_folder)), seeds=3, modalities=("dermoscopy",),
                      attributes=["hair", "ruler"], steps=4, batch=2, progress=False)
    assert [r["attribute"] for r in report["attributes"]] == ["hair", "ruler"]
    for row in report["attributes"]:
        for key in ("neutral_accuracy", "attribute_accuracy", "edited_target_rate", "cfrt", "no_non_target_flip",
                    "naive_edited_target_rate", "phantom_no_non_target_flip", "prompts_cut"):
            assert 0.0 <= row[key] <= 1.0, key
        assert row["seeds"] == 3 and row["psnr_whole"] > 0
        assert row["phantom_no_non_target_flip"] >= 2 / 3  # the renderer's own pairs: little else moves
        flips = row["flips_by_attribute"]  # which other attributes moved: the no-flip rate's reasons
        others = {"melanoma", "hair", "gel_bubbles", "ruler", "ink", "vignette"} - {row["attribute"]}
        assert set(flips) == others
        some_flip = max(f[way] for f in flips.values() for way in ("on", "off"))
        assert (some_flip > 0) == (row["no_non_target_flip"] < 1)
    assert report["locality"] == 0.3  # the model's default
    assert set(report["summary"]) >= {"cfrt", "neutral_accuracy", "attribute_accuracy", "psnr_whole"}
    distribution = report["distribution"]  # FID / KID per modality, generated and floor
    assert set(distribution) == {"dermoscopy"} and set(distribution["dermoscopy"]) == {"neutral", "edited"}
    for figures in distribution["dermoscopy"].values():
        assert figures["images"] == 6  # both rows' seeds pooled
        assert figures["fid"] > 0 and figures["fid_floor"] > 0 and figures["kid_std"] >= 0


def test_the_report_counts_prompts_the_text_window_cuts(micro_model_folder):
    evaluator = Evaluator(load_model(str(micro_model_folder)))  # a window of 64 tokens
    assert not evaluator.cut(("a dermoscopic image with melanoma (MEL)", "fair skin, " * 20))
    assert evaluator.cut(("a dermoscopic image with melanoma (MEL)", "fair skin, " * 25))
    assert evaluator.cut(("a dermoscopic image with melanoma (MEL) " * 8, ""))


def test_attribute_accuracy_pools_the_neutral_images_of_every_row_of_its_modality():
    row = lambda modality, attribute, by: {"modality": modality, "attribute": attribute,  # noqa: E731
                                           "neutral_accuracy_by_attribute": by}
    rows = [row("dermoscopy", "hair", {"hair": 1.0, "ink": 0.2}),  # ink asked for, not drawn
            row("dermoscopy", "ink", {"hair": 0.8, "ink": 1.0}),
            row("cxr", "marker", {"marker": 0.5})]
    pool_attribute_accuracy(rows)
    assert [r["attribute_accuracy"] for r in rows] == [pytest.approx(0.9), pytest.approx(0.6), 0.5]


def test_eval_cli_rejects_bad_values(micro_model_folder):
    run = lambda *a: subprocess.run([sys.executable, "-m", "pipelines", "eval", "--model",  # noqa: E731
                                     str(micro_model_folder), *a], capture_output=True, text=True)
    assert "--seeds must" not in run("--seeds", "0").stderr and run("--seeds", "0").returncode == 2
    bad = run("--style-scale", "nan")
    assert bad.returncode == 2 and "finite" in bad.stderr
    far = run("--locality", "1.5")
    assert far.returncode == 2 and "locality must be between 0 and 0.9" in far.stderr
    ok = run("--seeds", "1", "--attribute", "ink", "--modality", "dermoscopy", "--steps", "2", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["attributes"][0]["attribute"] == "ink"
