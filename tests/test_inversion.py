"""Editing an image the user brings: exact inversion, the cache, region masks, several edits at
once, series. On the micro model (random weights: the inversion is exact whatever the model) and
once on the shipped one."""

import numpy as np
import pytest
import torch

from pipelines.core.errors import MedEditError
from pipelines.data.phantoms import phantom
from pipelines.editing.inversion import encode
from pipelines.editing.pipeline import MedEditPipeline
from pipelines.editing.regions import Regions, unpack_mask
from pipelines.editing.requests import Edit, Sampling, Series
from pipelines.editing.sampling import advance, guided_noise
from pipelines.editing.terms import Term, TermGuidance, edit_inverted
from pipelines.model.loaded import decode
from pipelines.model.loading import load_model

S = Sampling("a dermoscopic image with melanocytic nevus (NV)", "fair skin", seed=5, steps=6)
IMAGE = phantom("dermoscopy", 11, size=64, hair=False, ruler=True).image


def test_sampling_again_with_the_source_prompts_gives_back_the_round_trip(micro_pipeline):
    inversion, reconstruction, _ = micro_pipeline.inverted(IMAGE, S)
    model = micro_pipeline.model
    clean = encode(model.vae, torch.from_numpy(IMAGE.copy())[None])
    # The replay repeats the inversion's steps exactly (the same inputs to the same functions) and
    # ends on the clean latent to float tolerance; the run itself ends on it exactly.
    source = micro_pipeline.neutral_branches(S)
    again = advance(model.transformer, inversion.states[0], S.steps, source, S.anatomy_scale, S.style_scale,
                    noises=inversion.noises)
    assert torch.allclose(again.latents, clean, rtol=0, atol=1e-5 * clean.abs().max())
    middle = advance(model.transformer, inversion.states[0], 3, source, S.anatomy_scale, S.style_scale,
                     noises=inversion.noises)
    assert torch.equal(middle.latents, inversion.states[3].latents)
    assert torch.equal(inversion.states[-1].latents, clean)
    assert np.array_equal(reconstruction, decode(model, clean)[0].numpy())


def test_an_edit_with_nothing_to_change_is_the_reconstruction(micro_pipeline):
    nothing = micro_pipeline.edit_image(IMAGE, S, Edit(swap_at=0.0))
    assert np.array_equal(nothing.neutral, nothing.edited)
    late = micro_pipeline.edit_image(IMAGE, S, Edit(sliders={"hair": 1.0}, swap_at=1.0))
    zero = micro_pipeline.edit_image(IMAGE, S, Edit(sliders={"hair": 0.0}, swap_at=0.0))
    assert np.array_equal(late.edited, late.neutral) and np.array_equal(zero.edited, zero.neutral)
    edited = micro_pipeline.edit_image(IMAGE, S, Edit(sliders={"hair": 1.0}, swap_at=0.0))
    assert not np.array_equal(edited.edited, edited.neutral)


def test_a_re_edit_reuses_the_inversion_and_equals_a_cold_edit(micro_model_folder):
    pipeline = MedEditPipeline(load_model(str(micro_model_folder)))
    first = pipeline.edit_image(IMAGE, S, Edit(sliders={"hair": 1.0}, swap_at=0.3))
    again = pipeline.edit_image(IMAGE, S, Edit(sliders={"hair": 2.0}, swap_at=0.5, locality=0.3))
    cold = MedEditPipeline(load_model(str(micro_model_folder))).edit_image(
        IMAGE, S, Edit(sliders={"hair": 2.0}, swap_at=0.5, locality=0.3))
    assert not first.prefix_cached and again.prefix_cached and not cold.prefix_cached
    assert np.array_equal(again.edited, cold.edited) and np.array_equal(again.neutral, first.neutral)
    other_seed = pipeline.edit_image(IMAGE, Sampling(S.anatomy, S.style, seed=6, steps=6), Edit())
    assert not other_seed.prefix_cached  # the seed draws the inversion's noise: part of the key


def test_outside_the_edit_mask_and_inside_the_keep_mask_the_latents_are_the_images(micro_pipeline):
    inversion, _, _ = micro_pipeline.inverted(IMAGE, S)
    edit = np.zeros((64, 64), bool)
    edit[:, :32] = True  # the left half may change
    keep = np.zeros((64, 64), bool)
    keep[:16, :16] = True  # but not its top-left corner: keep wins
    region = Regions(edit, keep).latent((16, 16))
    assert region[0, 0, :4, :4].sum() == 0 and region[0, 0, 8:, :8].all() and region[0, 0, :, 8:].sum() == 0
    terms = micro_pipeline.edit_terms(S, Edit(sliders={"hair": 2.0}))
    model = micro_pipeline.model
    final = edit_inverted(model.transformer, inversion, 0, micro_pipeline.neutral_branches(S), terms,
                          S.anatomy_scale, S.style_scale, region=region)[0].latents
    unchanged = inversion.states[-1].latents
    outside = region.expand_as(final) == 0
    assert torch.equal(final[outside], unchanged[outside])
    assert (final - unchanged)[~outside].abs().max() > 1e-3


def test_refresh_draws_the_last_steps_noise_fresh_inside_the_edit_only(micro_pipeline):
    inversion, _, _ = micro_pipeline.inverted(IMAGE, S)
    kept = inversion.tail_noises(2)
    assert all(a is b for a, b in zip(kept[:4], inversion.noises[:4]))  # steps 0-3: the image's own
    assert all(a is b for a, b in zip(kept[4:], inversion.fresh[4:]))
    assert all(a is b for a, b in zip(inversion.tail_noises(0), inversion.noises))
    assert not any(torch.equal(f, n) for f, n in zip(inversion.fresh, inversion.noises))
    assert Edit(refresh=0.2).refresh_steps(S.steps) == 1 and Edit(refresh=1.0).refresh_steps(S.steps) == 6
    edit = np.zeros((64, 64), bool)
    edit[:, :32] = True  # the left half may change
    hair = Edit(sliders={"hair": 1.0}, swap_at=0.3)
    exact = micro_pipeline.edit_image(IMAGE, S, hair, Regions(edit))
    refreshed = micro_pipeline.edit_image(IMAGE, S, Edit(sliders={"hair": 1.0}, swap_at=0.3, refresh=0.5),
                                          Regions(edit))
    again = micro_pipeline.edit_image(IMAGE, S, Edit(sliders={"hair": 1.0}, swap_at=0.3, refresh=0.5),
                                      Regions(edit))
    assert np.array_equal(refreshed.edited, again.edited)  # fresh, but drawn from the seed
    assert not np.array_equal(refreshed.edited[:, :28], exact.edited[:, :28])
    assert np.array_equal(refreshed.edited[:, 36:], IMAGE[:, 36:])  # outside the edit: the upload's pixels
    assert refreshed.settings["refresh"] == 0.5 and exact.settings["refresh"] == 0.0
    nothing = micro_pipeline.edit_image(IMAGE, S, Edit(swap_at=0.0, refresh=1.0), paste_back=False)
    assert np.array_equal(nothing.edited, nothing.neutral)  # no edit: still the round trip, exactly
    with pytest.raises(MedEditError, match="refresh must be between 0 and 1"):
        Edit(refresh=1.5)


def test_masks_at_the_uploads_own_size_follow_its_resize_and_crop(micro_pipeline):
    wide = np.zeros((64, 128, 3), np.uint8)
    wide[:, :, 0] = np.arange(128, dtype=np.uint8)[None]
    edit = np.zeros((64, 128), bool)
    edit[:, 64:] = True  # the right half of the file: the right half of the centre crop
    result = micro_pipeline.edit_image(wide, S, Edit(sliders={"hair": 1.0}, swap_at=0.0), Regions(edit))
    assert result.notes == ["centre-cropped from 128x64 to 64x64"]
    stored = unpack_mask(result.settings["regions"]["edit_mask"])
    assert stored[:, 32:].all() and not stored[:, :32].any()
    with pytest.raises(MedEditError, match="must be the image's size"):
        micro_pipeline.edit_image(wide, S, Edit(), Regions(np.ones((10, 10), bool)))
    with pytest.raises(MedEditError, match="nothing is left to edit"):
        Regions(edit, edit)


def test_several_edits_are_one_guidance_term_each_adding_and_removing(micro_pipeline):
    e = Edit(sliders={"hair": 1.5, "ruler": -1.0}, to_style="fair skin, showing ink", swap_at=0.0)
    terms = micro_pipeline.edit_terms(S, e)
    assert [t.name for t in terms] == ["prompts", "hair", "ruler"]
    slid = micro_pipeline.edited_branches(S, Edit(sliders={"hair": 1.5}))  # the slider alone, as ever
    assert torch.equal(terms[1].branches.tokens, slid.tokens)
    result = micro_pipeline.edit_image(IMAGE, S, e)
    assert [t["name"] for t in result.settings["terms"]] == ["prompts", "hair", "ruler"]
    # Removing is the other direction: its own image, not the adding one.
    add = micro_pipeline.edit_image(IMAGE, S, Edit(sliders={"ruler": 1.0}, swap_at=0.0)).edited
    remove = micro_pipeline.edit_image(IMAGE, S, Edit(sliders={"ruler": -1.0}, swap_at=0.0)).edited
    assert not np.array_equal(add, remove)


def test_term_guidance_is_two_scale_guidance_per_term(micro_pipeline):
    model, source = micro_pipeline.model, micro_pipeline.neutral_branches(S)
    inversion, _, _ = micro_pipeline.inverted(IMAGE, S)
    edited = micro_pipeline.edited_branches(S, Edit(sliders={"hair": 1.0}))
    x, t = inversion.states[2].latents, inversion.states[2].scheduler.timesteps[2]
    for scales in ((3.0, 3.0), (2.0, 5.0)):
        guidance = TermGuidance(model.transformer, source, [Term("hair", edited, 1.0)], *scales)
        eps_source, (eps_hair,) = guidance.predictions(x, t)
        for eps, branches in ((eps_source, source), (eps_hair, edited)):
            alone = guided_noise(model.transformer, x, t, branches, *scales)
            assert torch.allclose(eps, alone, atol=1e-5)
        assert torch.allclose(guidance(x, t), eps_hair, atol=1e-5)  # weight 1, no mask: the edit's own


def test_each_term_gets_its_own_implicit_mask(micro_pipeline):
    inversion, _, _ = micro_pipeline.inverted(IMAGE, S)
    model, source = micro_pipeline.model, micro_pipeline.neutral_branches(S)
    terms = micro_pipeline.edit_terms(S, Edit(sliders={"hair": 1.0, "ink": 1.0}))
    guidance = TermGuidance(model.transformer, source, terms, S.anatomy_scale, S.style_scale)
    x, t = inversion.states[1].latents, inversion.states[1].scheduler.timesteps[1]
    from pipelines.editing.sampling import change_mask
    eps_source, eps_terms = guidance.predictions(x, t)
    masks = [change_mask(e - eps_source, 0.9) for e in eps_terms]
    assert all(0 < m.mean() < 1 for m in masks) and not torch.equal(masks[0], masks[1])
    local, changed = edit_inverted(model.transformer, inversion, 1, source, terms, S.anatomy_scale,
                                   S.style_scale, locality=0.9)
    local = local.latents
    union = torch.maximum(*masks).expand_as(local) == 0
    assert torch.equal(local[union], inversion.states[-1].latents[union])  # outside both: the image
    assert torch.equal(changed, torch.maximum(*masks))


@pytest.mark.parametrize("mode", ["latent", "embedding"])
def test_a_series_runs_from_the_reconstruction_to_the_edit(micro_pipeline, mode):
    e = Edit(sliders={"hair": 1.0}, swap_at=0.0)
    series = micro_pipeline.series_image(IMAGE, S, e, Series(frames=4, mode=mode, control_points=3),
                                         paste_back=False)
    assert len(series.frames) == 4 and series.settings["source"] == "upload"
    reconstruction = micro_pipeline.edit_image(IMAGE, S, e, paste_back=False)
    assert np.abs(series.frames[0].astype(int) - reconstruction.neutral).max() <= 1
    if mode == "embedding":  # the last frame is the edit itself, in a batch of four
        assert np.abs(series.frames[-1].astype(int) - reconstruction.edited).max() <= 2


def test_outside_the_edits_region_the_result_keeps_the_uploads_own_pixels(micro_pipeline):
    keep = np.zeros((64, 64), bool)
    keep[40:, 40:] = True  # a device to keep, at pixel precision
    e = Edit(sliders={"hair": 1.0}, swap_at=0.0, locality=0.9)
    result = micro_pipeline.edit_image(IMAGE, S, e, Regions(keep=keep))
    assert np.array_equal(result.neutral, IMAGE)  # before: the upload itself
    assert np.array_equal(result.edited[keep], IMAGE[keep]) and not np.array_equal(result.edited, IMAGE)
    assert result.settings["outside_the_edit"] == "the upload's pixels"
    unchanged = (result.edited == IMAGE).all(2)
    assert 0.05 < unchanged.mean() < 1  # the implicit mask's outside is the upload too
    series = micro_pipeline.series_image(IMAGE, S, e, Series(frames=3), Regions(keep=keep))
    assert all(np.array_equal(frame[keep], IMAGE[keep]) for frame in series.frames)
    nothing = micro_pipeline.edit_image(IMAGE, S, Edit())
    assert np.array_equal(nothing.edited, IMAGE) and np.array_equal(nothing.neutral, IMAGE)


def test_a_bad_image_array_is_refused(micro_pipeline):
    with pytest.raises(MedEditError, match="uint8 array"):
        micro_pipeline.edit_image(np.zeros((64, 64, 3), np.float32), S, Edit())


def test_the_shipped_model_inverts_a_phantom_exactly():
    model = load_model("embedded")
    pipeline = MedEditPipeline(model)
    p = phantom("cxr", 20_900_001, size=64)
    s = Sampling(p.anatomy, p.style, seed=0, steps=model.info.defaults["steps"])
    inversion, reconstruction, _ = pipeline.inverted(p.image, s)
    clean = encode(model.vae, torch.from_numpy(p.image.copy())[None])
    replay = advance(model.transformer, inversion.states[0], s.steps, pipeline.neutral_branches(s),
                     s.anatomy_scale, s.style_scale, noises=inversion.noises).latents
    assert (replay - clean).abs().max() <= 1e-5 * clean.abs().max()
    assert np.array_equal(reconstruction, decode(model, clean)[0].numpy())
    differ = decode(model, replay)[0].numpy().astype(int) - reconstruction
    assert np.abs(differ).max() <= 1 and (differ != 0).mean() < 1e-3


@pytest.mark.parametrize("locality", [0.0, 0.9])
def test_one_term_at_weight_one_runs_only_its_own_branches_for_the_same_image(micro_pipeline, locality):
    inversion, _, _ = micro_pipeline.inverted(IMAGE, S)
    model, source = micro_pipeline.model, micro_pipeline.neutral_branches(S)
    (term,) = micro_pipeline.edit_terms(S, Edit(sliders={"hair": 1.0}))
    run = lambda weight: edit_inverted(model.transformer, inversion, 2, source,  # noqa: E731
                                       [Term("hair", term.branches, weight)], S.anatomy_scale, S.style_scale,
                                       locality)[0].latents
    assert TermGuidance(model.transformer, source, [term], S.anatomy_scale, S.style_scale).single
    fast, full = run(1.0), run(torch.ones(1))  # a tensor weight takes the general path
    assert torch.allclose(fast, full, atol=1e-4) and not torch.equal(fast, inversion.states[-1].latents)


def test_a_pixart_checkpoint_edits_an_upload_too(tiny_folder):
    """T5 conditioning, the PixArt VAE and its own DPM-Solver++: the same inversion holds."""
    pipeline = MedEditPipeline(load_model(str(tiny_folder)))
    image = (np.random.default_rng(0).random((100, 80, 3)) * 255).astype(np.uint8)
    s = Sampling("a chest x-ray", "PA view", steps=4)
    keep = np.zeros((100, 80), bool)
    keep[:30] = True
    result = pipeline.edit_image(image, s, Edit(to_style="AP view", swap_at=0.25, locality=0.5), Regions(keep=keep))
    size = pipeline.model.info.image_size
    assert result.edited.shape == (size, size, 3) and "centre-cropped" in result.notes[0]
    inversion, _, _ = pipeline.inverted(result.neutral, s)
    assert (inversion.landed - inversion.clean).abs().max() <= 1e-5 * inversion.clean.abs().max()


def test_masks_painted_in_an_app_are_read_by_their_paint():
    layer = np.zeros((64, 64, 4), np.uint8)
    layer[10:20, 10:20] = (0, 0, 0, 255)  # black paint on a transparent layer
    assert Regions(edit=layer).edit.sum() == 100
    colour = np.zeros((64, 64, 3), np.uint8)
    colour[:8, :, 2] = 255  # blue strokes
    assert Regions(keep=colour).keep.sum() == 8 * 64
    assert Regions(edit=np.eye(64)).edit.sum() == 64  # 0/1
    with pytest.raises(MedEditError, match="edit mask is empty"):
        Regions(edit=np.zeros((64, 64), np.uint8))
