"""The embedded model's trainers on micro presets: they run, save loadable weights, resume bitwise,
and refuse bad input in one line before anything is loaded or written."""

import json
import sys
from argparse import Namespace

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL
from safetensors.torch import load_file

from pipelines.cli import main
from pipelines.core.errors import MedEditError
from pipelines.data.phantoms import phantom, render
from pipelines.editing.pipeline import MedEditPipeline
from pipelines.editing.requests import Edit, Sampling
from pipelines.model.loading import load_model
from pipelines.model.info import read_model_info
from pipelines.training.checkpoints import META_FILE, latest_checkpoint
from pipelines.training.classifier import train_classifier
from pipelines.training.data import build_phantom_set, coverage, to_model_size, toggled_attribute
from pipelines.training.records import command_line
from pipelines.training.dit import train_dit
from pipelines.training.dit_data import loss_weights, outside_change, pair_keep_mask
from pipelines.training.latent_cache import mean_coverage, touched
from pipelines.training.hardware import check_device
from pipelines.training.vae import DETAIL_MASKS, train_vae
from pipelines.training.curve import CURVE_EVERY, CURVE_FILE, LearningCurve, read_curve
from pipelines.training.warm_start import widen_patch_embedding


def vae_args(tmp_path, steps, resume=False, **changes):
    return Namespace(**{**dict(preset="micro", steps=steps, batch=2, crop=32, lr=1e-3, n=4, seed=0,
                               workdir=str(tmp_path / "vae-run"), out=str(tmp_path / "model" / "vae"),
                               resume=resume, init=None, detail_weight=0.0, device="cpu", size=64,
                               kl_weight=1e-6, time_limit=None), **changes})


def dit_args(tmp_path, steps, resume=False, conditioning="separate", align=0.1, **changes):
    return Namespace(**{**dict(preset="micro", steps=steps, batch=4, lr=1e-3, n=6, seed=0, align=align,
                               conditioning=conditioning, vae=str(tmp_path / "model" / "vae"),
                               workdir=str(tmp_path / f"dit-run-{conditioning}"), out=str(tmp_path / "model"),
                               resume=resume, ema=0.99, device="cpu", init=None, detail_weight=0.0,
                               detail_masks="opacity", pair_weight=0.0, pair_keep="objects",
                               time_limit=None, text_tokens=64, size=64, new_layers_lr_scale=1.0,
                               new_layers_alone=0, data_cache=None), **changes})


def classifier_args(tmp_path, steps, resume=False, **changes):
    return Namespace(**{**dict(n=8, steps=steps, batch=4, lr=3e-3, widths="4,8", norm="batch", seed=0,
                               eval_n=4, workdir=str(tmp_path / "clf-run"), out=str(tmp_path / "classifier"),
                               resume=resume, size=64, lesion_free=0.2, init=None, fp16=False, time_limit=None),
                            **changes})


def same_tensors(a_file, b_file) -> bool:
    a, b = load_file(a_file), load_file(b_file)
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


VAE_FILE = "vae/diffusion_pytorch_model.safetensors"


def test_vae_resume_continues_bitwise(tmp_path):
    train_vae(vae_args(tmp_path, 3))
    # A second run stopped after step 1 and resumed must end bitwise where the uninterrupted one did,
    # also when a later save was killed half-way (a step folder without its state file). Stopped
    # after the first step: the cosine schedule's later rates depend on --steps.
    other = tmp_path / "other"
    train_vae(vae_args(other, 1))
    killed = other / "vae-run" / "step-000000009"
    killed.mkdir()
    (killed / "model.safetensors").write_bytes(b"half")
    assert latest_checkpoint(other / "vae-run").name == "step-000000001"
    train_vae(vae_args(other, 3, resume=True))
    assert same_tensors(tmp_path / "model" / VAE_FILE, other / "model" / VAE_FILE)
    assert sorted(p.name for p in (other / "vae-run").iterdir()) == [CURVE_FILE, "step-000000003"]
    assert AutoencoderKL.from_pretrained(tmp_path / "model" / "vae").config.scaling_factor > 0


def test_a_checkpoint_from_other_settings_or_an_earlier_format_is_refused(tmp_path):
    train_vae(vae_args(tmp_path, 1))
    with pytest.raises(MedEditError, match="from a run with other settings"):
        train_vae(vae_args(tmp_path, 2, resume=True, preset="cpu"))
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "training_state.safetensors").write_bytes(b"")
    with pytest.raises(MedEditError, match="in an earlier MedEdit format; rerun without --resume"):
        train_vae(vae_args(tmp_path, 2, resume=True, workdir=str(earlier)))


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


def test_dit_trains_and_the_result_loads_into_the_pipeline(tmp_path):
    train_vae(vae_args(tmp_path, 1))
    train_dit(dit_args(tmp_path, 3))
    # The first call's time lives in the training state; say it took 1000 s to see it carried over.
    meta_file = tmp_path / "dit-run-separate" / "step-000000003" / META_FILE
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "seconds": 1000.0}))
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


def test_phantom_sets_do_not_depend_on_how_many_processes_render_them():
    one = build_phantom_set(6, 3, 32, progress=False, detail_masks=("ink",), workers=1)
    two = build_phantom_set(6, 3, 32, progress=False, detail_masks=("ink",), workers=2)
    assert torch.equal(one.images, two.images) and torch.equal(one.detail, two.detail)
    assert (one.anatomy, one.style, one.modality) == (two.anatomy, two.style, two.modality)
    assert torch.equal(one.labels, two.labels)


def test_a_gpu_asked_for_where_there_is_none_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    check_device("auto")
    with pytest.raises(MedEditError, match="no CUDA GPU"):
        check_device("cuda")


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


def test_dit_warm_starts_at_twice_the_size_with_only_the_widened_layers_learning_first(tmp_path):
    train_vae(vae_args(tmp_path, 1))
    train_dit(dit_args(tmp_path, 1))
    # The same f4 VAE on 128-px phantoms gives 32x32 latents: the init's patch 2 becomes 4.
    train_dit(dit_args(tmp_path, 2, init=str(tmp_path / "model"), size=128, out=str(tmp_path / "big"),
                       workdir=str(tmp_path / "dit-big"), new_layers_alone=2, new_layers_lr_scale=10.0))
    config = json.loads((tmp_path / "big" / "transformer" / "config.json").read_text())
    assert (config["patch_size"], config["sample_size"]) == (4, 32)
    assert read_model_info(tmp_path / "big").image_size == 128
    before = load_file(tmp_path / "model" / "transformer" / "diffusion_pytorch_model.safetensors")
    after = load_file(tmp_path / "big" / "transformer" / "diffusion_pytorch_model.safetensors")
    kept = [k for k in before if not k.startswith(("pos_embed.proj.", "proj_out."))]
    assert kept and all(torch.equal(before[k], after[k]) for k in kept)
    widened = widen_patch_embedding(before["pos_embed.proj.weight"].float(), 2).half()
    assert not torch.equal(widened, after["pos_embed.proj.weight"])  # the new layers did learn


def test_the_phantom_latents_and_captions_are_kept_and_a_second_run_trains_on_them_alike(tmp_path, monkeypatch):
    train_vae(vae_args(tmp_path, 1))
    cache = tmp_path / "cache"
    terms = dict(data_cache=str(cache), pair_weight=1.0, detail_weight=2.0)
    train_dit(dit_args(tmp_path, 2, out=str(tmp_path / "first"), workdir=str(tmp_path / "w1"), **terms))
    assert len(list(cache.glob("phantom-latents-*/tensors.safetensors"))) == 1

    def no_rendering(*args, **kwargs):
        raise AssertionError("the second run rendered its phantoms again")

    def no_encoding(*args, **kwargs):
        raise AssertionError("the second run encoded its captions again")

    monkeypatch.setattr("pipelines.training.latent_cache.build_phantom_set", no_rendering)
    monkeypatch.setattr("pipelines.training.dit_data.encode_all", no_encoding)
    train_dit(dit_args(tmp_path, 2, out=str(tmp_path / "second"), workdir=str(tmp_path / "w2"), **terms))
    name = "transformer/diffusion_pytorch_model.safetensors"
    assert same_tensors(tmp_path / "first" / name, tmp_path / "second" / name)
    with pytest.raises(AssertionError, match="rendered its phantoms again"):  # other settings: not a stale read
        train_dit(dit_args(tmp_path, 1, workdir=str(tmp_path / "w3"), **{**terms, "detail_weight": 0.0}))


def test_dit_detail_weight_weighs_the_latent_pixels_the_masks_cover(tmp_path):
    detail = torch.zeros(1, 1, 64, 64, dtype=torch.uint8)
    detail[..., :4, :4] = 255  # one whole latent pixel (f4)
    detail[..., 4:6, :4] = 255  # half of the next one down
    weights = loss_weights(mean_coverage(detail, 16), 5.0)
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
    outside = outside_change(touched(change, 16))
    assert outside.shape == (1, 1, 16, 16)
    assert outside[0, 0, 4:7, 4:7].eq(0).all() and outside.sum() == 256 - 9
    objects = torch.zeros_like(change)
    objects[..., 16:32, 16:32] = 255  # latent pixels 4..7 square, partly inside the grown change
    change, objects = touched(change, 16), touched(objects, 16)
    assert torch.equal(pair_keep_mask(change, objects, "outside"), outside)
    keep = pair_keep_mask(change, objects, "objects")
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


def test_dit_resume_continues_bitwise_with_every_loss_term(tmp_path):
    """Straight to 3 steps, or 2 then 1 resumed: the same EMA weights, the same raw weights."""
    train_vae(vae_args(tmp_path, 1))
    terms = dict(detail_weight=2.0, detail_masks="opacity,hair,ruler", pair_weight=1.0)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_dit(dit_args(tmp_path, 3, out=str(straight), workdir=str(tmp_path / "w1"), **terms))
    train_dit(dit_args(tmp_path, 2, out=str(resumed), workdir=str(tmp_path / "w2"), **terms))
    train_dit(dit_args(tmp_path, 3, out=str(resumed), workdir=str(tmp_path / "w2"), resume=True, **terms))
    for part in ("transformer", "projector"):
        name = f"{part}/diffusion_pytorch_model.safetensors"
        assert same_tensors(straight / name, resumed / name), part
    for state in ("model.safetensors", "model_1.safetensors"):  # the trained weights and their EMA
        assert same_tensors(tmp_path / "w1" / "step-000000003" / state, tmp_path / "w2" / "step-000000003" / state)


def test_classifier_resume_continues_bitwise(tmp_path):
    train_classifier(classifier_args(tmp_path, 3))
    other = tmp_path / "other"
    train_classifier(classifier_args(other, 1))  # the first step's rate does not depend on --steps
    train_classifier(classifier_args(other, 3, resume=True))
    # BatchNorm's running statistics are part of the state, not only the weights.
    assert same_tensors(tmp_path / "classifier" / "model.safetensors", other / "classifier" / "model.safetensors")
    config = json.loads((tmp_path / "classifier" / "config.json").read_text())
    assert config["widths"] == [4, 8] and config["command"].startswith("python -m pipelines train classifier --n 8 ")


def test_a_training_record_names_the_switches_that_are_on_but_not_resume():
    args = Namespace(n=8, fp16=True, resume=True, init=None, lr=1e-3, no_projector=False)
    assert command_line("classifier", args) == "python -m pipelines train classifier --n 8 --fp16 --lr 0.001"


def test_train_runs_from_the_argv_given_to_main(tmp_path, capsys):
    argv = ["train", "vae", "--preset", "micro", "--steps", "1", "--batch", "2", "--n", "2", "--device", "cpu",
            "--workdir", str(tmp_path / "run"), "--out", str(tmp_path / "vae")]
    assert sys.argv[1:] != argv  # the process's own arguments are pytest's
    assert main(argv) == 0
    vae = AutoencoderKL.from_pretrained(tmp_path / "vae")
    with torch.no_grad():
        assert vae.decode(vae.encode(torch.zeros(1, 3, 64, 64)).latent_dist.mean).sample.shape == (1, 3, 64, 64)
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    listed = capsys.readouterr().out.split("WHAT", 2)[-1]
    assert exit_.value.code == 0 and all(name in listed for name in ("vae", "dit", "classifier", "lora"))


BAD_INPUT = [
    (["vae", "--batch", "0"], "--batch must be a whole number >= 1, got 0"),
    (["vae", "--steps", "-1"], "--steps must be a whole number >= 1, got -1"),
    (["vae", "--lr", "nan"], "--lr must be a finite number >= 0, got nan"),
    (["vae", "--seed", "-5"], "--seed must be a whole number from 0 to"),
    (["vae", "--crop", "30", "--preset", "micro"], "--crop must be a multiple of 4 from 4 to --size 64, got 30"),
    (["vae", "--preset", "huge"], "argument --preset: invalid choice: 'huge' (choose from 'micro', 'micro-f8', 'cpu', 'f8')"),
    (["vae", "--init", "{tmp}/missing"], "--init {tmp}/missing: no such folder"),
    (["vae", "--out", "{tmp}/a-file/vae"], "--out {tmp}/a-file/vae: {tmp}/a-file is a file, not a folder"),
    (["classifier", "--widths", "a,b"], "--widths takes whole numbers >= 1 separated by commas, got 'a,b'"),
    (["classifier", "--seed", "9999999", "--n", "10"], "training seeds reach 10000009, into the held-out range"),
    (["dit", "--preset", "nope", "--vae", "{vae}"], "argument --preset: invalid choice: 'nope' (choose from 'micro', 'cpu', 'gpu')"),
    (["dit", "--vae", "{tmp}/missing"], "--vae {tmp}/missing: no such folder"),
    (["dit", "--vae", "{tmp}"], "--vae {tmp} is not a saved model folder: it has no config.json"),
    (["dit", "--ema", "1.5", "--vae", "{vae}"], "--ema must be a finite number from 0 to 1, got 1.5"),
    (["dit", "--text-tokens", "2", "--vae", "{vae}"], "--text-tokens must be a whole number from 3 to 512, got 2"),
    (["dit", "--detail-masks", "opacty", "--vae", "{vae}"], "--detail-masks 'opacty': name attributes among"),
    (["lora", "--model", "{tmp}", "--data", "{tmp}", "--rank", "0"], "--rank must be a whole number >= 1, got 0"),
    (["lora", "--model", "{tmp}", "--data", "{tmp}", "--alpha", "0"], "--alpha must be above 0"),
]


@pytest.mark.parametrize("argv, message", BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_train_input_is_one_line_and_exit_2_with_nothing_written(argv, message, tmp_path, capsys,
                                                                     micro_model_folder):
    (tmp_path / "a-file").write_text("not a folder")
    before = sorted(tmp_path.rglob("*"))
    fill = dict(tmp=tmp_path, vae=micro_model_folder / "vae")
    outputs = [] if argv[0] == "lora" else ["--workdir", str(tmp_path / "run")]
    if "--out" not in argv:
        outputs += ["--out", str(tmp_path / "out")]
    assert main(["train", *[a.format(**fill) for a in argv], *outputs]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message.format(**fill) in err
    assert sorted(tmp_path.rglob("*")) == before


def test_an_argument_that_is_not_a_number_is_one_line_and_exit_2(capsys):
    assert main(["train", "dit", "--steps", "many"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --steps: invalid int value: 'many'" in err


def test_vae_trains_on_two_processes(tmp_path):
    """Two processes (torchrun; `accelerate launch` on GPUs): each draws its own batches, the
    gradients are averaged, every process saves its random state, the main one the model."""
    import os
    import subprocess
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "pipelines", "--",
         "train", "vae", "--preset", "micro", "--steps", "2", "--batch", "2", "--n", "4",
         "--workdir", str(tmp_path / "run"), "--out", str(tmp_path / "vae")],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "on 2 processes" in run.stdout
    saved = sorted(p.name for p in (tmp_path / "run" / "step-000000002").iterdir())
    assert saved == ["mededit_state.json", "model.safetensors", "optimizer.bin", "random_states_0.pkl",
                     "random_states_1.pkl"]
    one = tmp_path / "one"
    train_vae(vae_args(one, 2))  # one process draws half the batches: another model
    assert not same_tensors(tmp_path / VAE_FILE, one / "model" / VAE_FILE)


def test_the_learning_curve_spans_a_resumed_run(tmp_path):
    curve = LearningCurve(tmp_path, 0)
    for step in range(1, 2 * CURVE_EVERY + 1):
        curve.add(step, float(step), seconds=step / 10)
    lines = read_curve(tmp_path / CURVE_FILE)
    assert [line["step"] for line in lines] == [CURVE_EVERY, 2 * CURVE_EVERY]
    assert lines[0]["loss"] == (1 + CURVE_EVERY) / 2  # the mean of steps 1..CURVE_EVERY
    LearningCurve(tmp_path, CURVE_EVERY + 7)  # resumed from a checkpoint before the second line
    assert [line["step"] for line in read_curve(tmp_path / CURVE_FILE)] == [CURVE_EVERY]
