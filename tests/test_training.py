"""The embedded model's trainers on micro presets: they run, save loadable weights, and resume."""

import json
import subprocess
import sys
from argparse import Namespace

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL
from safetensors.torch import load_file

from pipelines.editing.pipeline import MedEditPipeline
from pipelines.core.errors import MedEditError
from pipelines.model.loading import load_model
from pipelines.data.phantoms import phantom, render
from pipelines.editing.requests import Edit, Sampling
from pipelines.training import checkpoints
from pipelines.training.checkpoints import META_FILE, RunClock, load_training_state, save_training_state
from pipelines.training.data import build_phantom_set, coverage, to_model_size, toggled_attribute
from pipelines.training.dit import loss_weights, outside_change, pair_keep_mask, train_dit
from pipelines.training.hardware import training_device
from pipelines.training.vae import DETAIL_MASKS, train_vae


def vae_args(tmp_path, steps, resume=False, **changes):
    return Namespace(**{**dict(preset="micro", steps=steps, batch=2, crop=32, lr=1e-3, n=4, seed=0,
                               workdir=str(tmp_path / "vae-run"), out=str(tmp_path / "model" / "vae"),
                               resume=resume, init=None, detail_weight=0.0, device="cpu"), **changes})


def dit_args(tmp_path, steps, resume=False, conditioning="separate", align=0.1, **changes):
    return Namespace(**{**dict(preset="micro", steps=steps, batch=4, lr=1e-3, n=6, seed=0, align=align,
                               conditioning=conditioning, vae=str(tmp_path / "model" / "vae"),
                               workdir=str(tmp_path / f"dit-run-{conditioning}"), out=str(tmp_path / "model"),
                               resume=resume, ema=0.99, device="cpu", init=None, detail_weight=0.0,
                               detail_masks="opacity", pair_weight=0.0, pair_keep="objects",
                               time_limit=None, text_tokens=64), **changes})


def test_vae_resume_continues_exactly(tmp_path):
    train_vae(vae_args(tmp_path, 2))
    straight = load_file(tmp_path / "model" / "vae" / "diffusion_pytorch_model.safetensors")
    # A second run stopped at step 1 and resumed must end where the uninterrupted one did.
    other = tmp_path / "other"
    train_vae(vae_args(other, 1))
    train_vae(vae_args(other, 2, resume=True))
    resumed = load_file(other / "model" / "vae" / "diffusion_pytorch_model.safetensors")
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.allclose(straight[key], resumed[key], atol=1e-6), key
    assert AutoencoderKL.from_pretrained(tmp_path / "model" / "vae").config.scaling_factor > 0


def test_a_vae_fine_tunes_from_another_with_the_thin_marks_weighted(tmp_path):
    train_vae(vae_args(tmp_path, 1))
    base = tmp_path / "model" / "vae"
    tuned = tmp_path / "tuned"
    train_vae(vae_args(tmp_path, 2, init=str(base), detail_weight=5.0, workdir=str(tmp_path / "tune-run"),
                       out=str(tuned)))
    before, after = AutoencoderKL.from_pretrained(base), AutoencoderKL.from_pretrained(tuned)
    assert before.config.block_out_channels == after.config.block_out_channels
    changed = [k for k, v in before.state_dict().items() if not torch.equal(v, after.state_dict()[k])]
    assert changed and "decoder.conv_out.weight" in changed


def test_detail_coverage_is_the_union_of_the_named_masks_at_the_model_size():
    plain = phantom("dermoscopy", 3, hair=False, gel_bubbles=False, ruler=False, ink=False)
    assert np.array_equal(coverage(plain.masks, DETAIL_MASKS, 64), coverage(plain.masks, ("lesion",), 64))
    inked = phantom("dermoscopy", 3, ink=True, hair=False, gel_bubbles=False, ruler=False)
    ink, both = coverage(inked.masks, ("ink",), 64), coverage(inked.masks, ("ink", "lesion"), 64)
    assert ink.shape == (64, 64) and ink.max() == 255 and not coverage(plain.masks, ("ink",), 64).any()
    assert (both >= ink).all() and (both > ink).any()


def test_the_training_state_carries_the_run_time_across_calls(tmp_path, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(checkpoints.time, "time", lambda: now[0])
    module = torch.nn.Linear(2, 2)
    first = RunClock()
    now[0] = 1000.0  # the first call trains for 1000 s, then stops
    save_training_state(tmp_path, {"m": module}, torch.optim.AdamW(module.parameters()), 1, first)
    now[0] = 5000.0  # an hour later a second call resumes
    second = RunClock()
    assert load_training_state(tmp_path, {"m": module}, torch.optim.AdamW(module.parameters()), second)
    now[0] = 5010.0
    assert second.seconds() == 1010.0  # both calls' training, not the pause between them


def test_dit_trains_and_the_result_loads_into_the_pipeline(tmp_path):
    train_vae(vae_args(tmp_path, 1))
    train_dit(dit_args(tmp_path, 3))
    # The first call's time lives in the training state; say it took 1000 s to see it carried over.
    meta_file = tmp_path / "dit-run-separate" / META_FILE
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "extra": {"seconds": 1000.0}}))
    train_dit(dit_args(tmp_path, 4, resume=True))
    pipeline = MedEditPipeline(load_model(str(tmp_path / "model")))
    result = pipeline.edit(Sampling("a dermoscopic image with melanoma (MEL)", "fair skin", 1, 3),
                           Edit(sliders={"hair": 1.0}, swap_at=0.0))
    assert result.edited.shape == (64, 64, 3)
    assert pipeline.model.info.training["steps"] == 4
    assert pipeline.model.info.training["seconds"] >= 1000  # the whole run, not the last call


def test_joined_ablation_trains_without_alignment_and_with_partners(tmp_path):
    train_vae(vae_args(tmp_path, 1))
    train_dit(dit_args(tmp_path, 2, conditioning="joined", align=0.0, pair_weight=1.0))
    assert load_model(str(tmp_path / "model")).info.conditioning == "joined"


def test_train_cli_lists_trainers_and_rejects_unknown_preset(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "pipelines", *a], capture_output=True, text=True)  # noqa: E731
    assert "classifier" in run("train", "--help").stdout
    bad = run("train", "vae", "--preset", "huge", "--steps", "1", "--n", "2",
              "--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "o"))
    assert bad.returncode == 2 and "unknown vae preset 'huge'" in bad.stderr
    assert not (tmp_path / "o").exists()


def test_phantom_sets_do_not_depend_on_how_many_processes_render_them():
    one = build_phantom_set(6, 3, 32, progress=False, detail_masks=("ink",), workers=1)
    two = build_phantom_set(6, 3, 32, progress=False, detail_masks=("ink",), workers=2)
    assert torch.equal(one.images, two.images) and torch.equal(one.detail, two.detail)
    assert (one.anatomy, one.style, one.modality) == (two.anatomy, two.style, two.modality)
    assert torch.equal(one.labels, two.labels)


def test_a_gpu_asked_for_where_there_is_none_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert training_device("auto").type == "cpu"
    with pytest.raises(MedEditError, match="no CUDA GPU"):
        training_device("cuda")


def test_dit_training_continues_from_a_saved_model(tmp_path):
    train_vae(vae_args(tmp_path, 1))
    train_dit(dit_args(tmp_path, 2))
    # With a zero learning rate nothing moves: the continued model is the one it started from.
    train_dit(dit_args(tmp_path, 2, init=str(tmp_path / "model"), lr=0.0, out=str(tmp_path / "again"),
                       workdir=str(tmp_path / "dit-again")))
    for part in ("transformer", "projector"):
        before = load_file(tmp_path / "model" / part / "diffusion_pytorch_model.safetensors")
        after = load_file(tmp_path / "again" / part / "diffusion_pytorch_model.safetensors")
        assert before.keys() == after.keys()
        assert all(torch.equal(before[k], after[k]) for k in before)


def test_dit_detail_weight_weighs_the_latent_pixels_the_masks_cover(tmp_path):
    detail = torch.zeros(1, 1, 64, 64, dtype=torch.uint8)
    detail[..., :4, :4] = 255  # one whole latent pixel (f4)
    detail[..., 4:6, :4] = 255  # half of the next one down
    weights = loss_weights(detail, 16, 5.0)
    assert weights.shape == (1, 1, 16, 16)
    assert weights[0, 0, 0, 0] == 6.0 and weights[0, 0, 1, 0] == 3.5 and weights[0, 0, 5, 5] == 1.0

    train_vae(vae_args(tmp_path, 1))
    every = "melanoma,hair,gel_bubbles,ruler,ink,vignette"  # some of these is on in the 6 phantoms drawn
    plain, weighted = tmp_path / "plain", tmp_path / "weighted"
    train_dit(dit_args(tmp_path, 2, out=str(plain), workdir=str(tmp_path / "w1")))
    train_dit(dit_args(tmp_path, 2, out=str(weighted), workdir=str(tmp_path / "w2"), detail_weight=5.0,
                       detail_masks=every))
    name = "transformer/diffusion_pytorch_model.safetensors"
    before, after = load_file(plain / name), load_file(weighted / name)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert "--detail-weight 5.0" in json.loads((weighted / "mededit.json").read_text())["training"]["command"]
    with pytest.raises(MedEditError, match="--detail-masks 'opacty'"):
        train_dit(dit_args(tmp_path, 1, detail_weight=1.0, detail_masks="opacty"))
    for flag, value in (("pair_weight", -1.0), ("time_limit", float("nan")), ("detail_weight", float("inf"))):
        with pytest.raises(MedEditError, match=f"--{flag.replace('_', '-')} must be a finite number >= 0"):
            train_dit(dit_args(tmp_path, 1, **{flag: value}))
    with pytest.raises(MedEditError, match="--text-tokens must be a whole number from 3 to 512, got 0"):
        train_dit(dit_args(tmp_path, 1, text_tokens=0))


def test_each_phantom_has_a_partner_that_differs_only_inside_the_recorded_change():
    data = build_phantom_set(8, 40, 64, progress=False, partners=True, workers=1)
    for i in range(len(data)):
        p = phantom(data.modality[i], 40 + i)
        name = toggled_attribute(p.modality, p.seed)
        q = render(p.modality, {**p.factors, name: not p.factors[name]}, p.seed)
        assert (data.partner_anatomy[i], data.partner_style[i]) == (q.anatomy, q.style)
        assert (data.anatomy[i], data.style[i]) != (q.anatomy, q.style)  # the toggle shows in a caption
        moved = np.abs(to_model_size(p.image, 64).astype(int) - to_model_size(q.image, 64).astype(int)).max(-1)
        assert moved.any() and not (moved[data.partner_change[i, 0].numpy() == 0]).any()


def test_the_partner_term_keeps_the_objects_outside_the_change():
    change = torch.zeros(1, 1, 64, 64, dtype=torch.uint8)
    change[..., 20, 20] = 255  # one image pixel: latent pixel (5, 5)
    outside = outside_change(change, 16)
    assert outside.shape == (1, 1, 16, 16)
    assert outside[0, 0, 4:7, 4:7].eq(0).all() and outside.sum() == 256 - 9
    objects = torch.zeros_like(change)
    objects[..., 16:32, 16:32] = 255  # latent pixels 4..7 square, partly inside the grown change
    data = Namespace(partner_change=change, objects=objects)
    assert torch.equal(pair_keep_mask(data, 16, "outside"), outside)
    keep = pair_keep_mask(data, 16, "objects")
    assert keep.sum() == 16 - 9 and keep[0, 0, 7, 7] == 1 and keep[0, 0, 5, 5] == 0


def test_partner_objects_cover_what_the_phantom_shows():
    data = build_phantom_set(4, 40, 64, progress=False, partners=True, workers=1)
    for i in range(len(data)):
        p = phantom(data.modality[i], 40 + i)
        shown = np.logical_or.reduce([to_model_size(m.astype(np.uint8) * 255, 64) > 0 for m in p.masks.values()])
        assert np.array_equal(data.objects[i, 0].numpy() > 0, shown)


def test_dit_pair_weight_trains_and_a_time_limit_records_the_steps_done(tmp_path):
    train_vae(vae_args(tmp_path, 1))
    paired = tmp_path / "paired"
    # A zero time limit stops after the first step whatever --steps says.
    train_dit(dit_args(tmp_path, 50, out=str(paired), workdir=str(tmp_path / "w2"), pair_weight=1.0,
                       time_limit=0.0, text_tokens=48))
    info = json.loads((paired / "mededit.json").read_text())
    training = info["training"]
    assert training["steps"] == 1 and "--steps 1 " in training["command"]
    assert info["text_tokens"] == 48 and "--text-tokens 48" in training["command"]
    assert "--pair-weight 1.0" in training["command"] and "time" not in training["command"]
    # Its first step draws what the plain run's did; only the partner term tells them apart.
    name = "transformer/diffusion_pytorch_model.safetensors"
    once = tmp_path / "once"
    train_dit(dit_args(tmp_path, 1, out=str(once), workdir=str(tmp_path / "w3")))
    assert any(not torch.equal(a, b) for a, b in zip(load_file(once / name).values(),
                                                     load_file(paired / name).values()))
