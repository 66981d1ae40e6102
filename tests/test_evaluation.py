"""The evaluator end to end on the micro model, judged by the shipped classifier."""

import json

import pytest

from pipelines.cli import main
from pipelines.core.errors import MedEditError
from pipelines.data.attributes import ATTRIBUTE_NAMES
from pipelines.evaluation.evaluator import Evaluator, evaluate, pool_attribute_accuracy, prompts_for
from pipelines.evaluation.plan import MAX_SEEDS, SEED_RANGES, evaluation_jobs, reference_seeds, row_seeds
from pipelines.model.loading import load_model


@pytest.fixture(scope="module")
def micro_model(micro_model_folder):
    return load_model(str(micro_model_folder))


@pytest.fixture(scope="module")
def report(micro_model):
    return evaluate(micro_model, seeds=3, modalities=("dermoscopy",), attributes=["hair", "ruler"],
                    steps=4, batch=2, progress=False)


def test_prompts_differ_only_by_the_attribute_phrase():
    factors, (a, s), (a2, s2) = prompts_for("dermoscopy", "hair", 5)
    assert not factors["hair"] and a == a2
    assert "with hairs visible on skin" in s2 and "with hairs visible on skin" not in s


def test_report_has_every_figure_in_range(micro_model, report):
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
    assert report["locality"] == micro_model.info.defaults["locality"]
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


def test_rows_never_share_seeds_and_tuning_never_meets_reporting():
    """Every block (each attribute's row and FID reference, in both ranges) at the largest --seeds
    lies apart from every other."""
    blocks = sorted((seeds(r, a, MAX_SEEDS)[0], seeds(r, a, MAX_SEEDS)[-1])
                    for r in SEED_RANGES for a in ATTRIBUTE_NAMES for seeds in (row_seeds, reference_seeds))
    assert len(blocks) == 2 * 2 * len(ATTRIBUTE_NAMES)
    assert all(end < next_start for (_, end), (next_start, _) in zip(blocks, blocks[1:]))
    tuning = [b for b in blocks if b[0] < SEED_RANGES["reporting"]]
    assert len(tuning) == len(blocks) // 2 and max(end for _, end in tuning) < SEED_RANGES["reporting"]
    assert min(start for start, _ in blocks) >= 10_000_000  # past every training seed


def test_the_report_uses_the_reporting_range_and_each_row_its_own_seeds(report):
    assert report["seed_range"] == "reporting"
    assert [r["first_seed"] for r in report["attributes"]] == [row_seeds("reporting", a, 1)[0]
                                                              for a in ("hair", "ruler")]


def test_a_rows_figures_do_not_depend_on_which_other_rows_run(micro_model, report):
    alone = evaluate(micro_model, seeds=3, modalities=("dermoscopy",), attributes=["ruler"], steps=4,
                     batch=2, progress=False)["attributes"][0]
    together = report["attributes"][1]
    pooled = {"attribute_accuracy"}  # pooled over the rows run, by design
    assert {k: v for k, v in alone.items() if k not in pooled} == \
        {k: v for k, v in together.items() if k not in pooled}


def test_the_evaluator_refuses_settings_instead_of_replacing_them(micro_model):
    with pytest.raises(MedEditError, match="steps must be between 1 and 100, got 0"):
        Evaluator(micro_model, steps=0)  # 0 once meant "the default"
    with pytest.raises(MedEditError, match="seeds per attribute must be a whole number from 1"):
        evaluate(micro_model, seeds=MAX_SEEDS + 1, attributes=["ink"])
    with pytest.raises(MedEditError, match="seed range 'test'"):
        evaluate(micro_model, seeds=1, attributes=["ink"], seed_range="test")
    with pytest.raises(MedEditError, match="nothing to evaluate"):
        evaluation_jobs((), None)


def test_eval_command_reports_json_on_the_tuning_range(micro_model_folder, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["eval", "--model", str(micro_model_folder), "--seeds", "1", "--attribute", "ink",
                 "--steps", "2", "--seed-range", "tuning", "--threads", "1", "--json", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    row = printed["attributes"][0]
    assert printed["seed_range"] == "tuning" and row["attribute"] == "ink" and printed["threads"] == 1
    assert row["first_seed"] == row_seeds("tuning", "ink", 1)[0] != row_seeds("reporting", "ink", 1)[0]
