"""Lesion present (issue 33, item 4): bare-skin dermoscopy phantoms, the classifier's `lesion`
output (and its input size as a config value), adding it to a trained classifier, and what the
evaluator, the landing notes and Describe say of an image with no lesion."""

import argparse
import json

import numpy as np
import pytest
import torch

from pipelines.core.errors import MedEditError
from pipelines.data.phantoms import caption, phantom, render, sample_factors
from pipelines.evaluation.classifier import (LESION, OUTPUTS, WITH_LESION, AttributeClassifier, ClassifierConfig,
                                             lesion_probability, load_classifier, predict_probs, save_classifier)
from pipelines.evaluation.describe import describe
from pipelines.evaluation.domain import folder_check
from pipelines.evaluation.lesion_check import LesionTally, lesion_landing, lesion_summary, names_a_lesion
from pipelines.training.classifier import augment, evaluate, starting_classifier, targets, train_classifier
from pipelines.training.data import build_phantom_set, lesion_free_seed, to_model_size
from pipelines.training.options import add_classifier_arguments, check_classifier_arguments

SEEDS = range(40_000_000, 40_000_006)  # no trainer or evaluation range


def micro(outputs=WITH_LESION, size=64, seed=0):
    torch.manual_seed(seed)
    return AttributeClassifier(ClassifierConfig(widths=(4, 8), input_size=size, outputs=outputs))


# ----------------------------------------------------------------------------- phantoms

def test_sampled_dermoscopy_phantoms_always_show_a_lesion():
    """The DiT's data: the new factor never samples bare skin."""
    assert all(sample_factors("dermoscopy", s)["lesion"] for s in range(2000))
    assert "lesion" not in sample_factors("cxr", 0)


def test_bare_skin_differs_only_where_the_lesion_was():
    for seed in SEEDS:
        on, off = phantom("dermoscopy", seed, 64), phantom("dermoscopy", seed, 64, lesion=False)
        assert on.masks["lesion"].any() and not off.masks["lesion"].any()
        assert off.factors["melanoma"] is False and off.labels["melanoma"] == 0
        changed = np.any(on.image != off.image, axis=2)
        assert changed.any() and not (changed & ~on.masks["lesion"]).any(), seed
        assert "no lesion" in off.anatomy and not any(w in off.anatomy for w in ("nevus", "melanoma"))
        assert off.style == caption("dermoscopy", {**on.factors, "lesion": False, "melanoma": False}, seed)[1]


def test_melanoma_without_a_lesion_is_refused():
    with pytest.raises(MedEditError, match="needs a lesion"):
        phantom("dermoscopy", 1, 32, lesion=False, melanoma=True)
    with pytest.raises(MedEditError, match="needs a lesion"):
        render("dermoscopy", {"lesion": False, "melanoma": True}, 1, 32)
    assert render("dermoscopy", {"lesion": False}, 1, 32).factors["melanoma"] is False


def test_phantom_set_draws_the_asked_share_of_bare_skin():
    default = build_phantom_set(8, 100, 32, progress=False, workers=1)
    assert default.lesion.tolist() == [1.0, 0.0] * 4  # dermoscopy, cxr, ...: the DiT's data unchanged
    data = build_phantom_set(40, 100, 32, progress=False, workers=1, lesion_free=0.5, render_size=64)
    derm = [i for i, m in enumerate(data.modality) if m == "dermoscopy"]
    bare = [i for i in derm if data.lesion[i] == 0]
    assert 0 < len(bare) < len(derm)
    assert bare == [i for i in derm if lesion_free_seed(100 + i, 0.5)]  # chosen by seed, not by order
    assert all(data.labels[i, 0] == 0 and "no lesion" in data.anatomy[i] for i in bare)
    assert all(data.lesion[i] == 0 for i, m in enumerate(data.modality) if m == "cxr")
    i = bare[0]  # rendered at render_size, box-filtered to the set's size
    expected = to_model_size(phantom("dermoscopy", 100 + i, 64, lesion=False).image, 32)
    assert np.array_equal(data.images[i].permute(1, 2, 0).numpy(), expected)


# ----------------------------------------------------------------------------- the classifier

def test_lesion_output_input_size_and_float16_round_trip(tmp_path):
    clf = micro(size=96).eval()
    image = phantom("dermoscopy", 3, 128).image
    assert predict_probs(clf, [image]).shape == (1, len(WITH_LESION))
    save_classifier(clf, tmp_path, dtype=torch.float16)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["input_size"] == 96 and saved["outputs"][-1] == LESION
    loaded = load_classifier(tmp_path)
    assert loaded.config == clf.config and next(loaded.parameters()).dtype == torch.float32
    np.testing.assert_allclose(predict_probs(loaded, [image]), predict_probs(clf, [image]), atol=5e-3)
    assert lesion_probability(loaded, [image]).shape == (1,)
    assert lesion_probability(micro(outputs=OUTPUTS), [image]) is None


@pytest.mark.parametrize("change,message", [({"outputs": list(OUTPUTS[1::-1] + OUTPUTS[2:])}, "outputs"),
                                            ({"input_size": 1024}, "input size")])
def test_a_classifier_this_code_cannot_read_is_refused(tmp_path, change, message):
    save_classifier(micro(), tmp_path)
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(MedEditError, match=f"does not match this code.*{message}"):
        load_classifier(tmp_path)


def test_targets_and_held_out_scoring_of_the_lesion_output():
    data = build_phantom_set(24, 100, 32, progress=False, workers=1, lesion_free=0.5)
    y = targets(data, lesion=True)
    assert y.shape == (24, len(WITH_LESION)) and torch.equal(y[:, -1], data.lesion)
    assert targets(data).shape == (24, len(OUTPUTS))
    clf = micro(size=32)
    with torch.no_grad():  # an output that always says "lesion": right on exactly the lesions
        clf.lesion_head.weight.zero_()
        clf.lesion_head.bias.fill_(10.0)
    derm = [i for i, m in enumerate(data.modality) if m == "dermoscopy"]
    accuracy = evaluate(clf, data)
    assert accuracy[LESION] == pytest.approx(float(data.lesion[derm].mean()))
    assert set(accuracy) == set(WITH_LESION)


def test_augmentation_scales_with_the_input_size():
    images = torch.full((4, 3, 128, 128), 128, dtype=torch.uint8)
    images[:, :, 60:68, 60:68] = 0
    x = augment(images, torch.Generator().manual_seed(0))
    assert x.shape == images.shape and x.min() >= -1 and x.max() <= 1


def classifier_args(tmp_path, *extra):
    parser = argparse.ArgumentParser()
    add_classifier_arguments(parser)
    return parser.parse_args(["--n", "16", "--steps", "3", "--batch", "8", "--eval-n", "8", "--widths", "4,8",
                              "--workdir", str(tmp_path / "runs"), *extra])


@pytest.mark.parametrize("extra,message", [(["--size", "300"], "--size"),
                                           (["--lesion-free", "1"], "--lesion-free"),
                                           (["--init", "nowhere"], "--init")])
def test_bad_classifier_arguments_are_refused(tmp_path, extra, message):
    with pytest.raises(MedEditError, match=message):
        check_classifier_arguments(classifier_args(tmp_path, "--out", str(tmp_path / "out"), *extra))


def test_a_trained_classifier_gains_the_lesion_output_and_trains_on(tmp_path):
    """--init FOLDER: every trained weight carried over as it was, the lesion layer new; a run from
    it reports the lesion output's held-out accuracy; another --size starts from the same weights."""
    base = tmp_path / "base"
    train_classifier(classifier_args(tmp_path, "--out", str(base), "--lesion-free", "0", "--size", "32"))
    first = load_classifier(base)
    assert first.config.outputs == OUTPUTS and first.config.input_size == 32
    args = classifier_args(tmp_path, "--out", str(tmp_path / "added"), "--init", str(base), "--size", "32",
                           "--workdir", str(tmp_path / "runs2"))
    start = starting_classifier(args)
    assert start.config.outputs == WITH_LESION
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, start.state_dict()[name]), name
    train_classifier(args)
    report = json.loads((tmp_path / "added" / "config.json").read_text())
    assert report["outputs"] == list(WITH_LESION) and LESION in report["held_out"]["accuracy_clean"]
    larger = starting_classifier(classifier_args(tmp_path, "--init", str(base), "--size", "64"))
    assert larger.config.input_size == 64 and torch.equal(larger.head.weight, first.head.weight)


# ----------------------------------------------------------------------------- what is said

def test_lesion_tally_and_the_report_summary():
    tally = LesionTally()
    tally.add("neutral", [7, 8, 9], np.array([0.9, 0.2, 0.7]))
    tally.add("edited", [7, 8, 9], np.array([0.9, 0.4, 0.6]))
    tally.add("phantom", [7, 8, 9, 7, 8, 9], np.ones(6))
    row = tally.row()
    assert row["neutral"]["no_lesion_seeds"] == [8] and row["edited"]["with_lesion"] == pytest.approx(2 / 3)
    summary = lesion_summary([{"modality": "dermoscopy", "lesion": row}, {"modality": "cxr", "lesion": None}])
    assert summary["with_lesion"] == pytest.approx(4 / 6) and summary["without_lesion"] == 2
    assert summary["meets_target"] is False and summary["phantom_with_lesion"] == 1.0
    unjudged = lesion_summary([{"modality": "dermoscopy", "lesion": LesionTally().row()}])
    assert unjudged["with_lesion"] is None and "not checked" in unjudged["note"]


def probability_rows(lesion_before, lesion_after):
    before, after = np.zeros(len(WITH_LESION)), np.zeros(len(WITH_LESION))
    before[-1], after[-1] = lesion_before, lesion_after
    return before, after


def test_landing_says_when_a_named_lesion_is_missing():
    settings = {"anatomy": "a dermoscopic image with melanocytic nevus (NV), a lesion", "to_anatomy": ""}
    record, notes = lesion_landing(*probability_rows(0.1, 0.2), settings)
    assert record == {"before": 0.1, "after": 0.2, "found": False}
    assert notes and "no lesion found in the source image or the result" in notes[0] and "another seed" in notes[0]
    _, notes = lesion_landing(*probability_rows(0.9, 0.2), settings)
    assert "the source had one" in notes[0] and "keep mask" in notes[0]
    assert lesion_landing(*probability_rows(0.1, 0.8), settings)[1] == []
    bare = {"anatomy": "a dermoscopic image of skin with no lesion", "to_anatomy": ""}
    assert lesion_landing(*probability_rows(0.1, 0.1), bare)[1] == []  # asked for none: nothing to say
    assert lesion_landing(*(row[:len(OUTPUTS)] for row in probability_rows(0.1, 0.1)), settings) == (None, [])
    assert names_a_lesion("melanoma (MEL)") and not names_a_lesion("normal skin, no lesion")


def test_describe_says_no_lesion_found_instead_of_a_nevus():
    clf = micro().eval()
    with torch.no_grad():
        clf.lesion_head.weight.zero_()
        clf.lesion_head.bias.fill_(-10.0)  # sees no lesion anywhere
        clf.head.weight.zero_()
        clf.head.bias.fill_(-10.0)  # dermoscopy, nothing present
    d = describe(phantom("dermoscopy", 5, 64).image, clf, folder_check(None, "test"))
    assert d.modality == "dermoscopy" and d.findings[0].name == LESION and not d.findings[0].present
    assert "melanoma" not in [f.name for f in d.findings]
    assert d.anatomy == "a dermoscopic image of skin with no lesion" and "no lesion found" in d.summary()
    with torch.no_grad():
        clf.lesion_head.bias.fill_(10.0)
    d = describe(phantom("dermoscopy", 5, 64).image, clf, folder_check(None, "test"))
    assert [f.name for f in d.findings][:2] == [LESION, "melanoma"] and "nevus" in d.anatomy


def census_script():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "scripts" / "lesion_census.py"
    spec = importlib.util.spec_from_file_location("lesion_census", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("bias,found", [(-10.0, False), (10.0, True)])
def test_census_counts_the_model_s_images_without_a_lesion(micro_model_folder, bias, found):
    """scripts/lesion_census.py on the micro model: each dermoscopy row's reporting seeds, read by a
    classifier that sees a lesion everywhere or nowhere; and its check at the model's size."""
    from pipelines.model.loading import load_model
    census = census_script()
    clf = micro().eval()
    with torch.no_grad():
        clf.lesion_head.weight.zero_()
        clf.lesion_head.bias.fill_(bias)
    model = load_model(str(micro_model_folder))
    rows, bare = census.census(model, clf, 2, "reporting", 2)
    assert len(rows) == 6 and all(r["images"] == 2 for r in rows.values())
    assert all(len(r["without_lesion"]) == (0 if found else 2) for r in rows.values())
    assert len(bare) == (0 if found else 12)
    if not found:  # the hair row's first reporting seed (plan.py: its block of the reporting range)
        assert rows["hair"]["without_lesion"][0] == {"seed": 30_100_000, "lesion_probability": 0.0}
    check = census.accuracy_at(clf, model.image_size, 8)
    assert check["with_lesion_found"] == float(found) and check["bare_found_bare"] == float(not found)


def test_a_model_that_ships_its_own_classifier_is_judged_by_it(micro_model_folder, tmp_path):
    """MODEL/classifier (the 256-px model's reads 128 px) judges that model's images in eval and
    eval --uploads; a model without one is judged by the default classifier."""
    import shutil

    from pipelines.evaluation.classifier import DEFAULT_FOLDER, classifier_folder
    from pipelines.evaluation.evaluator import Evaluator
    from pipelines.model.loading import load_model
    folder = tmp_path / "with-classifier"
    shutil.copytree(micro_model_folder, folder)
    assert classifier_folder(folder) == DEFAULT_FOLDER and classifier_folder(None) == DEFAULT_FOLDER
    save_classifier(micro(size=96), folder / "classifier", dtype=torch.float16)
    assert classifier_folder(folder) == folder / "classifier"
    assert Evaluator(load_model(str(folder))).classifier.config.input_size == 96
