"""The evaluator end to end on the micro model, judged by the shipped classifier."""

import json
import subprocess
import sys

from pipelines.evaluation import evaluate, prompts_for
from pipelines.loading import load_model


def test_prompts_differ_only_by_the_attribute_phrase():
    factors, (a, s), (a2, s2) = prompts_for("dermoscopy", "hair", 5)
    assert not factors["hair"] and a == a2
    assert "with hairs visible on skin" in s2 and "with hairs visible on skin" not in s


def test_report_has_every_figure_in_range(micro_model_folder):
    report = evaluate(load_model(str(micro_model_folder)), seeds=3, modalities=("dermoscopy",),
                      attributes=["hair", "ruler"], steps=4, batch=2, progress=False)
    assert [r["attribute"] for r in report["attributes"]] == ["hair", "ruler"]
    for row in report["attributes"]:
        for key in ("neutral_accuracy", "edited_target_rate", "cfrt", "no_non_target_flip",
                    "naive_edited_target_rate"):
            assert 0.0 <= row[key] <= 1.0, key
        assert row["seeds"] == 3 and row["psnr_whole"] > 0
    assert set(report["summary"]) >= {"cfrt", "neutral_accuracy", "psnr_whole"}


def test_eval_cli_rejects_bad_values(micro_model_folder):
    run = lambda *a: subprocess.run([sys.executable, "-m", "pipelines", "eval", "--model",  # noqa: E731
                                     str(micro_model_folder), *a], capture_output=True, text=True)
    assert "--seeds must" not in run("--seeds", "0").stderr and run("--seeds", "0").returncode == 2
    bad = run("--style-scale", "nan")
    assert bad.returncode == 2 and "finite" in bad.stderr
    ok = run("--seeds", "1", "--attribute", "ink", "--modality", "dermoscopy", "--steps", "2", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["attributes"][0]["attribute"] == "ink"
