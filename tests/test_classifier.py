"""The attribute classifier: a micro model learns, round-trips through safetensors, predicts
deterministically at any input size; the shipped one is accurate on fresh held-out phantoms."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipelines.data.attributes import ATTRIBUTES, ATTRIBUTE_NAMES, MODALITIES
from pipelines.evaluation.classifier import (DEFAULT_FOLDER, INPUT_SIZE, OUTPUTS, AttributeClassifier,
                                  load_classifier, predict_probs, save_classifier)
from pipelines.core.errors import MedEditError
from pipelines.data.phantoms import phantom
from pipelines.training.classifier import augment, targets
from pipelines.training.data import build_phantom_set, to_unit_range

MICRO_WIDTHS = (4, 8, 8)
TEST_SEED = 20_000_000  # fresh: training uses seeds < 10_000_000, its held-out set starts there


def micro(seed=0, norm="batch"):
    torch.manual_seed(seed)
    return AttributeClassifier(widths=MICRO_WIDTHS, norm=norm)


@pytest.fixture(scope="module")
def tiny_set():
    return build_phantom_set(8, 0, INPUT_SIZE, progress=False)


def test_a_classifier_for_other_outputs_is_refused_and_its_input_size_is_its_own(tmp_path):
    """Its columns are read by name (the registry's order, then the modality): a classifier saved
    for other columns must not load silently. Its input size is its own (config.json): one saved
    at 128 px loads and reads every image at 128 px."""
    clf = micro()
    assert clf(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)).shape == (1, len(ATTRIBUTE_NAMES) + 1)
    for name, config in (("reordered", {"outputs": OUTPUTS[1::-1] + OUTPUTS[2:]}),
                         ("larger", {"input_size": 2 * INPUT_SIZE})):
        save_classifier(clf, tmp_path / name)
        path = tmp_path / name / "config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
    with pytest.raises(MedEditError, match="does not match this code"):
        load_classifier(tmp_path / "reordered")
    larger = load_classifier(tmp_path / "larger")
    assert larger.config.input_size == 2 * INPUT_SIZE
    image = phantom("cxr", 3, size=2 * INPUT_SIZE).image
    seen = []
    larger.body.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape[-1]))
    predict_probs(larger, [image])
    assert seen == [2 * INPUT_SIZE]


def test_targets_are_zero_for_the_other_modality(tiny_set):
    y = targets(tiny_set)
    assert y.shape == (8, len(OUTPUTS))
    for row, m in zip(y, tiny_set.modality):
        assert row[-1] == float(m == "cxr")
        other = [j for j, a in enumerate(ATTRIBUTES) if a.modality != m]
        assert row[other].sum() == 0


def test_augment_keeps_shape_and_range(tiny_set):
    x = augment(tiny_set.images, torch.Generator().manual_seed(0))
    assert x.shape == tiny_set.images.shape and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    again = augment(tiny_set.images, torch.Generator().manual_seed(0))
    assert torch.equal(x, again)  # seeded, hence reproducible


def test_micro_classifier_loss_drops(tiny_set):
    clf = micro()
    y = targets(tiny_set)
    x = to_unit_range(tiny_set.images)
    optimizer = torch.optim.Adam(clf.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss = F.binary_cross_entropy_with_logits(clf(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_save_load_round_trip_is_exact(tmp_path, tiny_set, norm):
    clf = micro(norm=norm)
    clf.train()
    clf(to_unit_range(tiny_set.images))  # move BatchNorm running stats off their defaults
    clf.eval()
    save_classifier(clf, tmp_path, {"note": "test"})
    loaded = load_classifier(tmp_path)
    assert loaded.config == clf.config and not loaded.training
    for (k, a), (k2, b) in zip(clf.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    images = [phantom("cxr", 1).image, phantom("dermoscopy", 2).image]
    np.testing.assert_array_equal(predict_probs(clf, images), predict_probs(loaded, images))


def test_predict_probs_shape_range_determinism_and_resizing():
    clf = micro()
    big = [phantom(m, 30 + i, size=128).image for i, m in enumerate(MODALITIES * 2)]
    small = [phantom(m, 30 + i, size=128).image for i, m in enumerate(MODALITIES * 2)]
    from pipelines.training.data import to_model_size
    small = [to_model_size(im, INPUT_SIZE) for im in small]
    p = predict_probs(clf, big)
    assert p.shape == (4, len(OUTPUTS)) and np.all((p >= 0) & (p <= 1))
    np.testing.assert_array_equal(p, predict_probs(clf, big))  # deterministic
    np.testing.assert_array_equal(p, predict_probs(clf, np.stack(small)))  # 128 -> 64 with BOX
    np.testing.assert_allclose(predict_probs(clf, big[:1])[0], p[0], atol=1e-6)  # batch-independent
    assert clf.training  # a fresh module is in train mode; prediction leaves it as it was


def test_predict_probs_refuses_bad_images():
    clf = micro()
    with pytest.raises(MedEditError):
        predict_probs(clf, [])
    with pytest.raises(MedEditError):
        predict_probs(clf, [np.zeros((64, 64, 3), np.float32)])


def test_load_classifier_missing_folder(tmp_path):
    with pytest.raises(MedEditError, match="no attribute classifier"):
        load_classifier(tmp_path / "nowhere")


def test_shipped_classifier_is_accurate_on_fresh_phantoms():
    if not (DEFAULT_FOLDER / "model.safetensors").is_file():
        pytest.skip(f"shipped classifier absent from {DEFAULT_FOLDER}; "
                    "train it with `python -m pipelines train classifier`")
    clf = load_classifier()
    data = [phantom(MODALITIES[i % 2], TEST_SEED + i, size=128) for i in range(48)]
    probs = predict_probs(clf, [p.image for p in data])
    assert np.all((probs[:, -1] > 0.5) == np.array([p.modality == "cxr" for p in data]))
    for j, a in enumerate(ATTRIBUTES):
        rows = [i for i, p in enumerate(data) if p.modality == a.modality]
        truth = np.array([data[i].labels[a.name] for i in rows])
        accuracy = np.mean((probs[rows, j] > 0.5) == truth)
        assert accuracy >= 0.95, f"{a.name}: accuracy {accuracy:.3f} on {len(rows)} fresh phantoms"
