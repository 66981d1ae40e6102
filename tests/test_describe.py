"""`describe`: source prompts for an uploaded image from the shipped attribute classifier."""

import numpy as np
import pytest

from pipelines.data.phantoms import phantom
from pipelines.evaluation.classifier import load_classifier
from pipelines.evaluation.describe import describe, dermoscopy_prompts


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


@pytest.mark.parametrize("modality", ["dermoscopy", "cxr"])
def test_phantoms_are_described_as_the_renderer_drew_them(classifier, modality):
    for seed in range(20_700_000, 20_700_010):
        p = phantom(modality, seed, size=128)  # any size: fitted to the classifier's first
        d = describe(p.image, classifier)
        assert d.modality == modality and d.modality_confidence > 0.9
        assert {f.name: int(f.present) for f in d.findings} == p.labels
        assert all(0.5 <= f.confidence <= 1 for f in d.findings)
        for f in d.findings:  # the prompts state each attribute in the registry's phrase
            phrase_in = {"melanoma": "melanoma (MEL)", "effusion": "pleural effusion", "cardiomegaly": "cardiomegaly",
                         "opacity": "a focal lung opacity"}.get(f.name)
            if phrase_in:
                assert (phrase_in in d.anatomy) == f.present


def test_the_prompts_use_the_registry_phrases():
    present = {"melanoma": True, "hair": True, "gel_bubbles": False, "ruler": True, "ink": False, "vignette": False}
    assert dermoscopy_prompts(present) == ("a dermoscopic image with melanoma (MEL)",
                                           "with hairs visible on skin, with a ruler visible")
    assert dermoscopy_prompts(dict.fromkeys(present, False))[1] == "no artifacts"


def test_grey_and_rgba_arrays_are_described(classifier):
    grey = phantom("cxr", 5, size=64).image[..., 0]
    assert describe(grey, classifier).modality == "cxr"
    rgba = np.dstack([phantom("dermoscopy", 5, size=64).image, np.full((64, 64), 255, np.uint8)])
    assert describe(rgba, classifier).modality == "dermoscopy"
