"""The pipeline layer on a micro random-weight model saved in the real layout."""

import json
import shutil
import threading

import numpy as np
import pytest
import torch

from pipelines.model import conditioners
from pipelines.editing.pipeline import MedEditPipeline
from pipelines.core.errors import MedEditError
from pipelines.model.loading import load_model
from pipelines.model.info import INFO_FILE, ModelInfo, read_model_info, write_model_info
from pipelines.editing.requests import Edit, Sampling, Series
from pipelines.editing.sampling import Keep, advance, edit_mask, edit_tail, guided_noise

S = Sampling("a dermoscopic image with melanocytic nevus (NV)", "fair skin", seed=3, steps=6)
E = Edit(to_style="fair skin, with hairs visible on skin", swap_at=0.34)


def test_generate_is_bitwise_reproducible_across_pipelines(micro_model_folder):
    a = MedEditPipeline(load_model(str(micro_model_folder))).generate(S)
    b = MedEditPipeline(load_model(str(micro_model_folder))).generate(S)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)


def test_edit_from_cached_prefix_equals_cold_edit(micro_model_folder, micro_pipeline):
    cold = MedEditPipeline(load_model(str(micro_model_folder))).edit(S, E)
    micro_pipeline.edit(S, Edit(sliders={"ruler": 1.0}, swap_at=E.swap_at))  # fills the cache
    warm = micro_pipeline.edit(S, E)
    assert warm.prefix_cached and not cold.prefix_cached
    assert np.array_equal(cold.edited, warm.edited) and np.array_equal(cold.neutral, warm.neutral)


def test_neutral_of_edit_is_the_generated_image(micro_pipeline):
    assert np.array_equal(micro_pipeline.generate(S), micro_pipeline.edit(S, E).neutral)


def test_a_re_edit_decodes_only_its_edit(micro_model_folder, monkeypatch):
    pipeline = MedEditPipeline(load_model(str(micro_model_folder)))
    first = pipeline.edit(S, E)
    first.neutral[:] = 0  # a caller writing into its result leaves the cache alone
    decoded = []
    vae_decode = pipeline.model.vae.decode
    monkeypatch.setattr(pipeline.model.vae, "decode", lambda z: decoded.append(len(z)) or vae_decode(z))
    again = pipeline.edit(S, Edit(sliders={"ruler": 1.0}, swap_at=E.swap_at))
    assert decoded == [1] and np.array_equal(again.neutral, pipeline.generate(S)) and again.neutral.any()


def test_edit_changes_the_image_and_swap_at_end_changes_nothing(micro_pipeline):
    result = micro_pipeline.edit(S, E)
    assert not np.array_equal(result.neutral, result.edited)
    untouched = micro_pipeline.edit(S, Edit(to_style=E.to_style, swap_at=1.0))
    assert np.array_equal(untouched.neutral, untouched.edited)


def test_slider_scale_zero_is_the_neutral_prompt_and_sign_matters(micro_pipeline):
    zero = micro_pipeline.edit(S, Edit(sliders={"hair": 0.0}, swap_at=0.0))
    assert np.array_equal(zero.neutral, zero.edited)
    plus = micro_pipeline.edit(S, Edit(sliders={"hair": 1.0}, swap_at=0.0)).edited
    minus = micro_pipeline.edit(S, Edit(sliders={"hair": -1.0}, swap_at=0.0)).edited
    assert not np.array_equal(plus, minus)


def test_slider_one_equals_typing_the_phrase(micro_pipeline):
    typed = micro_pipeline.edit(S, Edit(to_style="fair skin, with hairs visible on skin", swap_at=0.0))
    slid = micro_pipeline.edit(S, Edit(sliders={"hair": 1.0}, swap_at=0.0))
    assert np.abs(typed.edited.astype(int) - slid.edited).max() <= 2


def test_local_edit_keeps_the_neutral_latents_outside_its_mask(micro_pipeline):
    run, _ = micro_pipeline.neutral_run(S)
    neutral, edited = micro_pipeline.neutral_branches(S), micro_pipeline.edited_branches(S, E)
    swap, scales = E.swap_step(S.steps), (S.anatomy_scale, S.style_scale)
    transformer = micro_pipeline.model.transformer
    mask, _ = edit_mask(transformer, run[swap], neutral, edited, *scales, 0.9, run[swap + 1].eps)
    assert mask.shape == (1, 1, *run[0].latents.shape[-2:]) and 0 < mask.mean() < 1
    local = edit_tail(transformer, run, swap, neutral, edited, *scales, 0.9).latents
    outside = (mask == 0).expand_as(local)
    assert torch.equal(local[outside], run[-1].latents[outside])
    assert not torch.equal(local, run[-1].latents)


def test_a_local_edit_reuses_the_predictions_it_already_has(micro_pipeline):
    """The mask takes the neutral prediction the run kept, and the tail's first step the edited
    prediction the mask made: the same edit as making both again."""
    run, _ = micro_pipeline.neutral_run(S)
    neutral, edited = micro_pipeline.neutral_branches(S), micro_pipeline.edited_branches(S, E)
    swap, scales = E.swap_step(S.steps), (S.anatomy_scale, S.style_scale)
    transformer = micro_pipeline.model.transformer
    remade = guided_noise(transformer, run[swap].latents, run[swap].scheduler.timesteps[swap],
                          neutral, *scales)
    assert torch.allclose(run[swap + 1].eps, remade, atol=1e-6)
    mask, _ = edit_mask(transformer, run[swap], neutral, edited, *scales, 0.5, run[swap + 1].eps)
    plain = advance(transformer, run[swap], S.steps, edited, *scales,
                    keep=Keep(mask, [state.latents for state in run])).latents
    assert torch.equal(edit_tail(transformer, run, swap, neutral, edited, *scales, 0.5).latents, plain)


def info_without_default(folder, key: str):
    """The embedded model's mededit.json written to folder with one sampling default left out."""
    write_model_info(folder, ModelInfo.embedded_default())
    path = folder / INFO_FILE
    saved = json.loads(path.read_text())
    del saved["defaults"][key]
    path.write_text(json.dumps(saved))
    return folder


def test_a_model_folder_from_before_local_edits_edits_the_whole_image(tmp_path):
    assert read_model_info(info_without_default(tmp_path, "locality")).defaults["locality"] == 0.0
    assert ModelInfo.embedded_default().defaults["locality"] == 0.3


def test_a_model_folder_without_a_sampling_default_is_refused_by_name(tmp_path):
    with pytest.raises(MedEditError, match="mededit.json is not a valid model description: "
                                           "its sampling defaults lack swap_at"):
        read_model_info(info_without_default(tmp_path, "swap_at"))


def test_a_model_keeps_the_caption_window_it_was_trained_with(micro_model_folder, tmp_path):
    write_model_info(tmp_path, ModelInfo.embedded_default())
    assert read_model_info(tmp_path).text_tokens == 64
    saved = json.loads((tmp_path / INFO_FILE).read_text())
    del saved["text_tokens"]  # a folder written before the window was recorded: 32, as then
    (tmp_path / INFO_FILE).write_text(json.dumps(saved))
    assert read_model_info(tmp_path).text_tokens == 32
    for bad in (2, 513, 32.5, "64", True):
        (tmp_path / INFO_FILE).write_text(json.dumps({**saved, "text_tokens": bad}))
        with pytest.raises(MedEditError, match="not a valid model description: text_tokens must be"):
            read_model_info(tmp_path)

    narrow = tmp_path / "narrow"
    shutil.copytree(micro_model_folder, narrow)
    info = read_model_info(narrow)
    write_model_info(narrow, ModelInfo(**{**info.__dict__, "text_tokens": 8}))
    pipeline = MedEditPipeline(load_model(str(narrow)))
    long_style = "fair skin, even lighting, with hairs visible on skin"
    assert pipeline.channel("style", long_style).tokens.shape[1] == 8
    assert pipeline.notes(("", long_style)) == ["the style prompt is too long; ignored: 'with hairs visible on skin'"]


@pytest.mark.parametrize("mode", ["latent", "embedding"])
def test_series_runs_from_neutral_to_edit(micro_pipeline, mode):
    result = micro_pipeline.series(S, E, Series(frames=5, mode=mode))
    assert len(result.frames) == 5 and result.times[0] == 0.0 and result.times[-1] == 1.0
    edit = micro_pipeline.edit(S, E)
    assert np.abs(result.frames[0].astype(int) - edit.neutral).mean() < 1.0
    assert np.abs(result.frames[-1].astype(int) - edit.edited).mean() < 1.0


def test_prompts_are_encoded_once_until_the_cache_forgets_them():
    calls = []

    def encode(channel, prompt):
        calls.append((channel, prompt))
        return conditioners.ChannelTokens(torch.full((1, 1, 1), float(len(calls))), torch.ones(1, 1))

    lookup = conditioners.cached(encode, 2)
    first = lookup("anatomy", "chest x-ray")
    assert lookup("anatomy", "chest x-ray") is first
    lookup("style", "chest x-ray")  # same prompt, other channel: its own entry
    lookup("style", "")  # the cache holds two: the anatomy entry, least recently used, goes
    assert lookup("anatomy", "chest x-ray") is not first
    assert calls == [("anatomy", "chest x-ray"), ("style", "chest x-ray"), ("style", ""),
                     ("anatomy", "chest x-ray")]


def test_concurrent_requests_give_the_same_images(micro_pipeline):
    expected = micro_pipeline.edit(S, E).edited
    results = []

    def run(seed):
        fresh = MedEditPipeline(micro_pipeline.model)  # cold caches: real work in parallel
        results.append((seed, fresh.edit(Sampling(S.anatomy, S.style, seed, S.steps), E).edited))

    threads = [threading.Thread(target=run, args=(seed,)) for seed in (S.seed, 11, S.seed, 12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seed, image in results:
        if seed == S.seed:
            assert np.array_equal(image, expected)


@pytest.mark.parametrize("make", [
    lambda: Sampling("", ""),
    lambda: Sampling("x" * 401, ""),
    lambda: Sampling("a", "b", seed=-1),
    lambda: Sampling("a", "b", seed=2**32),
    lambda: Sampling("a", "b", steps=0),
    lambda: Sampling("a", "b", anatomy_scale=float("nan")),
    lambda: Sampling("a", "b", style_scale=float("inf")),
    lambda: Sampling("a", "b", style_scale=16),
    lambda: Sampling(5, "b"),
    lambda: Edit(swap_at=1.5),
    lambda: Edit(swap_at="0.2"),
    lambda: Edit(sliders={"hair": 99}),
    lambda: Edit(locality=1.0),
    lambda: Edit(locality=float("nan")),
    lambda: Series(frames=1),
    lambda: Series(mode="spline"),
])
def test_bad_requests_are_refused_with_a_message(make):
    with pytest.raises(MedEditError) as error:
        make()
    assert str(error.value)


def test_unknown_attribute_is_refused(micro_pipeline):
    with pytest.raises(MedEditError, match="unknown attribute 'wings'"):
        micro_pipeline.edit(S, Edit(sliders={"wings": 1.0}))


def test_over_long_prompt_is_reported_as_truncated(micro_pipeline):
    long = "a dermoscopic image with melanoma " + "dark dots, " * 30  # over 64 tokens, under 400 characters
    result = micro_pipeline.edit(Sampling(long, "", seed=1, steps=2), Edit(swap_at=0.5))
    assert any("too long" in note for note in result.notes)


def test_model_folder_missing_files_or_pickle_weights_is_refused(micro_model_folder, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(micro_model_folder, broken)
    (broken / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(MedEditError, match="vae/diffusion_pytorch_model.safetensors"):
        load_model(str(broken))
    (broken / "vae" / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(MedEditError, match="pickle"):
        load_model(str(broken))
    with pytest.raises(MedEditError):
        load_model(str(tmp_path / "nowhere"))


def test_joined_model_reads_both_prompts_in_its_anatomy_channel(micro_model_folder, tmp_path):
    """The ablation's baseline: one prompt, the style channel null in every branch."""
    folder = tmp_path / "joined"
    shutil.copytree(micro_model_folder, folder)
    write_model_info(folder, ModelInfo.embedded_default(conditioning="joined"))
    pipeline = MedEditPipeline(load_model(str(folder)))
    branches = pipeline.neutral_branches(S)
    null_style = pipeline.channel("style", "").tokens[0]
    n = len(null_style)
    assert all(torch.equal(branches.tokens[0, i, -n:], null_style) for i in range(3))
    joined = pipeline.channel("anatomy", f"{S.anatomy}, {S.style}").tokens[0]
    assert torch.equal(branches.tokens[0, 2, :-n], joined)
    assert torch.equal(branches.tokens[0, 1, :-n], pipeline.channel("anatomy", S.anatomy).tokens[0])
    result = pipeline.edit(S, E)
    assert not np.array_equal(result.neutral, result.edited)
    typed = pipeline.edit(S, Edit(to_style=E.to_style, swap_at=0.0)).edited
    slid = pipeline.edit(S, Edit(sliders={"hair": 1.0}, swap_at=0.0)).edited  # a style slider
    assert np.abs(typed.astype(int) - slid).max() <= 2


@torch.no_grad()
def test_swap_at_t_equals_a_plain_loop_that_switches_prompts(micro_model_folder):
    """An independent reference for the swap: diffusers' scheduler and transformer driven by hand,
    the neutral prompts for the first `swap` steps and the edited ones after, three guidance
    branches in one batch. No cache, no prefix, no pipeline code."""
    from diffusers import DPMSolverMultistepScheduler

    model = load_model(str(micro_model_folder))
    s = Sampling(S.anatomy, S.style, seed=5, steps=7, anatomy_scale=2.0, style_scale=4.0)
    e = Edit(to_anatomy="a dermoscopic image with melanoma (MEL)", swap_at=3 / 7, locality=0.0)

    def branches(anatomy, style):  # (null, null), (anatomy, null), (anatomy, style)
        enc = model.conditioner.encode
        null_a, null_s, a, st = enc("anatomy", ""), enc("style", ""), enc("anatomy", anatomy), enc("style", style)
        pairs = [(null_a, null_s), (a, null_s), (a, st)]
        return (torch.cat([torch.cat([x.tokens, y.tokens], 1) for x, y in pairs]),
                torch.cat([torch.cat([x.mask, y.mask], 1) for x, y in pairs]))

    neutral, edited = branches(s.anatomy, s.style), branches(e.to_anatomy, s.style)
    scheduler = DPMSolverMultistepScheduler.from_config(model.scheduler.config)
    scheduler.set_timesteps(s.steps)
    latents = torch.randn((1, *model.latent_shape), generator=torch.Generator().manual_seed(s.seed))
    for i, t in enumerate(scheduler.timesteps):
        tokens, mask = neutral if i < 3 else edited
        out = model.transformer(latents.repeat(3, 1, 1, 1), encoder_hidden_states=tokens,
                                encoder_attention_mask=mask, timestep=torch.full((3,), int(t)),
                                added_cond_kwargs=None).sample[:, : latents.shape[1]]
        e_null, e_anatomy, e_full = out.unbind(0)
        eps = e_null + s.anatomy_scale * (e_anatomy - e_null) + s.style_scale * (e_full - e_anatomy)
        latents = scheduler.step(eps[None], t, latents, return_dict=False)[0]
    image = model.vae.decode(latents / model.vae.config.scaling_factor).sample
    reference = ((image.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)[0].numpy()

    result = MedEditPipeline(model).edit(s, e)
    assert e.swap_step(s.steps) == 3
    assert np.array_equal(result.edited, reference)
    assert not np.array_equal(result.neutral, reference)
