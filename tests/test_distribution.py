"""FID and KID through torchmetrics on the classifier's features, against an independent
computation, with the floor computed the same way as the figure."""

import numpy as np
import pytest
import torch
from scipy import linalg

from pipelines.core.errors import MedEditError
from pipelines.data.phantoms import phantom
from pipelines.evaluation.classifier import AttributeClassifier, load_classifier, prepare_images
from pipelines.evaluation.distribution import ClassifierFeatures, DistanceToPhantoms


def dermoscopy(first_seed: int, n: int) -> list[np.ndarray]:
    return [phantom("dermoscopy", first_seed + i, size=64).image for i in range(n)]


@pytest.fixture(scope="module")
def sets():
    return {"a": dermoscopy(100, 40), "b": dermoscopy(200, 40), "reference": dermoscopy(300, 40)}


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


def reference_fid(x: np.ndarray, y: np.ndarray) -> float:
    """The textbook formula with scipy's matrix square root, independent of torchmetrics."""
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = np.real(linalg.sqrtm(s1 @ s2))
    d = x.mean(0) - y.mean(0)
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


def test_fid_is_the_frechet_distance_of_the_classifier_features(classifier, sets):
    distance = DistanceToPhantoms(classifier)
    for i in range(0, 40, 16):  # batch by batch, as the evaluator feeds it
        distance.update(sets["a"][i:i + 16], sets["b"][i:i + 16], sets["reference"][i:i + 16])
    got = distance.compute()
    with torch.no_grad():
        feats = {k: classifier.features(prepare_images(v)).double().numpy() for k, v in sets.items()}
    assert got["images"] == 40
    assert got["fid"] == pytest.approx(reference_fid(feats["reference"], feats["a"]), rel=1e-3)
    assert got["fid_floor"] == pytest.approx(reference_fid(feats["reference"], feats["b"]), rel=1e-3)


def test_the_floor_is_the_same_computation_as_the_figure(classifier, sets):
    distance = DistanceToPhantoms(classifier)
    distance.update(sets["a"], sets["a"], sets["reference"])
    got = distance.compute()
    assert got["fid"] == got["fid_floor"] and got["kid"] == got["kid_floor"]
    assert got["kid_std"] == got["kid_floor_std"] > 0  # subsets of half the set differ


def test_images_unlike_the_phantoms_score_above_the_floor(classifier, sets):
    distance = DistanceToPhantoms(classifier)
    faded = [(image * 0.6 + 60).astype(np.uint8) for image in sets["a"]]
    distance.update(faded, sets["b"], sets["reference"])
    got = distance.compute()
    assert got["fid"] > 2 * got["fid_floor"]
    assert got["kid"] > got["kid_floor"] + 2 * got["kid_std"]


def test_kid_is_seeded_and_leaves_the_global_generator_alone(classifier, sets):
    distance = DistanceToPhantoms(classifier)
    distance.update(sets["a"], sets["b"], sets["reference"])
    torch.manual_seed(5)
    first = distance.compute()
    after = torch.rand(3)
    torch.manual_seed(5)
    assert distance.compute() == first
    assert torch.equal(torch.rand(3), after)


def test_features_are_computed_in_eval_mode_and_the_mode_is_kept():
    torch.manual_seed(0)
    clf = AttributeClassifier(widths=(4, 8))  # fresh: train mode, BatchNorm would use the batch
    x = prepare_images(dermoscopy(0, 4))
    features = ClassifierFeatures(clf)(x)
    assert clf.training and features.shape == (4, clf.feature_dim)
    with torch.no_grad():
        assert torch.equal(features, clf.eval().features(x))


def test_too_few_or_unequal_sets(classifier, sets):
    distance = DistanceToPhantoms(classifier)
    distance.update(sets["a"][:1], sets["b"][:1], sets["reference"][:1])
    assert distance.compute() == {"images": 1, "fid": None, "kid": None, "kid_std": None,
                                  "fid_floor": None, "kid_floor": None, "kid_floor_std": None}
    with pytest.raises(MedEditError, match="differ in size"):
        distance.update(sets["a"][:2], sets["b"][:1], sets["reference"][:2])
