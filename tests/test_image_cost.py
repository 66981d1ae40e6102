"""cost.image_work against a counted run: the transformer passes, decodes and encodes an edit or a
series of an uploaded image really makes (forward hooks on the micro model), for every shape of
request: no term, one term (its shortcut), several, local, with a region, both guidance forms,
latent and embedding series. The count is exact on a cold cache, and an upper bound on a warm one."""

import itertools
from contextlib import contextmanager

import numpy as np
import pytest

from pipelines.editing.cost import (PASSES_PER_DECODE, PASSES_PER_ENCODE, image_work,
                                    request_work, term_count)
from pipelines.editing.regions import Regions
from pipelines.editing.requests import Edit, Sampling, Series

NEVUS, SKIN = "a dermoscopic image with melanocytic nevus (NV)", "fair skin"
IMAGE = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
SEEDS = itertools.count(1000)  # a fresh seed per run: its inversion is not in the cache


@contextmanager
def counted(pipeline):
    """{"passes", "decodes", "encodes"} the model makes inside the block (batch rows, not calls)."""
    counts = {"passes": 0, "decodes": 0, "encodes": 0}

    def counter(key):
        def hook(module, args):
            counts[key] += args[0].shape[0]
        return hook

    modules = {"passes": pipeline.model.transformer, "decodes": pipeline.model.vae.decoder,
               "encodes": pipeline.model.vae.encoder}
    handles = [module.register_forward_pre_hook(counter(key)) for key, module in modules.items()]
    try:
        yield counts
    finally:
        for handle in handles:
            handle.remove()


def sampling(steps=5, scales=(3.0, 3.0)):
    return Sampling(NEVUS, SKIN, next(SEEDS), steps, *scales)


EDITS = [
    ("nothing to edit", Edit(swap_at=0.2), None),
    ("one slider: the single-term shortcut", Edit(sliders={"hair": 1.0}, swap_at=0.2), None),
    ("one slider, local", Edit(sliders={"hair": -1.0}, swap_at=0.4, locality=0.3), None),
    ("prompts and two sliders", Edit(to_style="dark skin", sliders={"hair": 1.0, "ruler": 2.0}, swap_at=0.0), None),
    ("a zero slider is no term", Edit(sliders={"hair": 0.0, "ink": 1.0}, swap_at=0.6, locality=0.5), None),
    ("swap at the end", Edit(sliders={"hair": 1.0}, swap_at=1.0), None),
    ("an edit mask", Edit(sliders={"hair": 1.0, "ink": 1.0}, swap_at=0.2, locality=0.3), "edit"),
]


@pytest.mark.parametrize("scales", [(3.0, 3.0), (2.0, 4.0)], ids=["equal scales", "two scales"])
@pytest.mark.parametrize("name, edit, region", EDITS, ids=[name for name, _, _ in EDITS])
def test_an_edits_work_is_what_the_model_does(micro_pipeline, name, edit, region, scales):
    s = sampling(scales=scales)
    regions = None
    if region:
        mask = np.zeros((64, 64), bool)
        mask[16:48, 16:48] = True
        regions = Regions(mask, None)
    terms = len(micro_pipeline.edit_terms(s, edit))
    assert terms == term_count(edit)
    work = image_work(s, edit, terms)
    with counted(micro_pipeline) as did:
        micro_pipeline.edit_image(IMAGE, s, edit, regions)
    assert did == {"passes": work.passes, "decodes": work.decodes, "encodes": work.encodes}, work.detail
    with counted(micro_pipeline) as again:  # the inversion from the cache: less, never more
        micro_pipeline.edit_image(IMAGE, s, edit, regions)
    assert again["passes"] == work.passes - s.steps * (2 if scales[0] == scales[1] else 3)


SERIES = [Series(frames=4, mode="latent", control_points=4), Series(frames=3, mode="latent", control_points=2),
          Series(frames=5, mode="latent", control_points=10), Series(frames=3, mode="embedding", bend=0.5)]


@pytest.mark.parametrize("series", SERIES, ids=lambda x: f"{x.mode}-{x.frames}-{x.control_points}")
@pytest.mark.parametrize("sliders", [{"hair": 1.0}, {"hair": 1.0, "ruler": -1.0}], ids=["one term", "two terms"])
def test_a_series_work_is_what_the_model_does(micro_pipeline, series, sliders):
    s, edit = sampling(steps=6, scales=(2.0, 4.0)), Edit(sliders=sliders, swap_at=0.2, locality=0.3)
    work = image_work(s, edit, term_count(edit), series)
    with counted(micro_pipeline) as did:
        micro_pipeline.series_image(IMAGE, s, edit, series)
    assert did == {"passes": work.passes, "decodes": work.decodes, "encodes": work.encodes}, work.detail


@pytest.mark.parametrize("steps, swap, points", [(20, 6, 6), (20, 0, 10), (7, 1, 3), (5, 5, 4), (50, 10, 2)])
def test_latent_swaps_are_numpys_linspace(steps, swap, points):
    """The swaps as the pipelines computed them before (numpy.linspace), so series stay the same."""
    weakest = max(swap, round(0.9 * steps))
    expected = sorted({round(x) for x in np.linspace(weakest, swap, points - 1)}, reverse=True)
    assert Series(control_points=points).latent_swaps(steps, swap) == expected


def test_units_and_exports_count_as_for_a_generated_image():
    s, edit, series = Sampling(NEVUS, SKIN, 0, 20, 3.0, 3.0), Edit(sliders={"hair": 1.0}), Series(frames=8)
    work = image_work(s, edit, 1, series, exported=True)
    assert work.exported == 8 and work.encodes == 1 and work.decodes == 9
    assert work.units == work.passes + PASSES_PER_DECODE * 9 + 8 + PASSES_PER_ENCODE
    assert image_work(s, edit, 1, exported=True).exported == 2
    assert image_work(s, edit, 1, exported=False) == image_work(s, edit, 1)
    assert request_work(s, edit, series, exported=True).exported == 8  # unchanged beside it
