"""LoRA + HFFM adapters on PixArt: training changes the model, adapters reload bit-exactly, a
mismatched base is refused before it is touched, HLDF's gradient reaches the LoRA weights."""

import argparse
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from pipelines.cli import main
from pipelines.model.adapters import (LORA_FILE, PREFIX, add_lora, has_lora, load_adapter, read_adapter_config,
                                      save_adapter, target_modules)
from pipelines.model.projector import DisentangledProjector
from pipelines.editing.pipeline import MedEditPipeline
from pipelines.core.errors import MedEditError
from pipelines.training.hldf import colour_loss, dpm_solver_sample, hldf_loss
from pipelines.training.lora import train_lora
from pipelines.training.options import add_lora_arguments
from pipelines.model.loading import LoadedModel
from pipelines.model.pixart import T5Conditioner, load_pixart_model
from pipelines.editing.requests import Edit, Sampling
from pipelines.editing.sampling import Branches
from tests.tiny_pixart import build_tiny_pixart

SAMPLING = Sampling("chest x-ray", "support devices", seed=1, steps=3)
EDIT = Edit(to_anatomy="chest x-ray with pleural effusion", swap_at=0.34)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(4):
        colour = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
        Image.fromarray(colour).save(folder / f"{i}.png")
        rows.append({"file_name": f"{i}.png",
                     "anatomy": "chest x-ray with pleural effusion" if i % 2 else "chest x-ray",
                     "style": "support devices" if i < 2 else "",
                     "labels": {"effusion": i % 2, "support_devices": int(i < 2), "nodule": i // 3}})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def train_args(*argv):
    parser = argparse.ArgumentParser()
    add_lora_arguments(parser)
    return parser.parse_args([str(a) for a in argv])


def edit_images(model):
    result = MedEditPipeline(model).edit(SAMPLING, EDIT)
    return np.stack([result.neutral, result.edited])


def test_target_groups_name_vg_medgen_layers():
    assert target_modules("attn,ff,adaln") == [
        "to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2", "adaln_single.linear",
        "timestep_embedder.linear_1", "timestep_embedder.linear_2"]
    transformer = build_tiny_pixart().transformer
    add_lora(transformer, rank=2)
    wrapped = {n.rsplit(".lora_A", 1)[0] for n, _ in transformer.named_parameters() if ".lora_A." in n}
    assert "adaln_single.linear" in wrapped and "transformer_blocks.0.attn2.to_k" in wrapped
    assert not any("caption_projection" in n or "proj_out" in n for n in wrapped)
    assert all(p.requires_grad == ("lora_" in n) for n, p in transformer.named_parameters())
    with pytest.raises(MedEditError, match="match no layer"):
        add_lora(build_tiny_pixart().transformer, targets="no_such_layer")


def test_a_few_lora_steps_change_the_output(tiny_folder, dataset, tmp_path):
    out = tmp_path / "adapter"
    args = train_args("--model", tiny_folder, "--data", dataset, "--out", out, "--steps", 3,
                      "--batch", 2, "--lr", 1e-2, "--rank", 4)
    train_lora(args)
    config = read_adapter_config(out)
    assert config["base_model"] == str(tiny_folder) and config["rank"] == 4 and config["projector"]
    assert config["priors"] == {"anatomy": ["effusion", "nodule"], "style": ["support_devices"]}
    assert [a["name"] for a in config["attributes"]] == ["nodule"]  # not in the registry: a slider
    lora = load_file(out / LORA_FILE)
    assert all(k.startswith(PREFIX) for k in lora)
    assert any(v.abs().sum() > 0 for k, v in lora.items() if "lora_B" in k)  # B starts at zero
    assert (out / "projector" / "diffusion_pytorch_model.safetensors").is_file()
    base = edit_images(load_pixart_model(str(tiny_folder)))
    adapted_model = load_pixart_model(str(out))  # an adapter folder names its base model
    assert adapted_model.model_id == f"{tiny_folder}+{out}"
    assert adapted_model.info.attribute("nodule")["channel"] == "anatomy"
    assert not np.array_equal(base, edit_images(adapted_model))


def test_resume_reproduces_an_uninterrupted_run(tiny_folder, dataset, tmp_path):
    common = ["--model", tiny_folder, "--data", dataset, "--batch", 2, "--lr", 1e-2, "--rank", 2,
              "--no-projector", "--checkpoint-every", 1]
    straight = train_args(*common, "--steps", 3, "--out", tmp_path / "straight")
    train_lora(straight)
    first = train_args(*common, "--steps", 2, "--out", tmp_path / "resumed")
    train_lora(first)
    second = train_args(*common, "--steps", 3, "--out", tmp_path / "resumed", "--resume")
    train_lora(second)
    a, b = load_file(tmp_path / "straight" / LORA_FILE), load_file(tmp_path / "resumed" / LORA_FILE)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not (tmp_path / "resumed" / "projector").exists()


def test_adapter_reloads_bit_exactly(tiny_folder, tmp_path):
    base = load_pixart_model(str(tiny_folder))
    add_lora(base.transformer, rank=4, alpha=8)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in base.transformer.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.1)
    torch.manual_seed(0)
    projector = DisentangledProjector(text_dim=16, dim=16, anatomy_prior_dim=2, style_prior_dim=1,
                                      hidden_dim=32).eval()
    conditioner = T5Conditioner(base.conditioner.text.tokenizer, base.conditioner.text.text_encoder,
                                projector)
    trained = LoadedModel(base.model_id, base.revision, base.transformer, base.vae, base.scheduler,
                          conditioner, base.info)
    before = edit_images(trained)
    x, t = torch.randn(2, 4, 8, 8, generator=generator), torch.tensor([10, 900])
    tokens = conditioner.encode("anatomy", "chest x-ray").tokens.expand(2, -1, -1)
    with torch.no_grad():
        raw_before = trained.transformer(x, encoder_hidden_states=tokens, timestep=t).sample
    save_adapter(tmp_path / "adapter", trained.transformer, projector, base_model=str(tiny_folder),
                 base_revision=base.revision, rank=4, alpha=8, targets=target_modules("attn,ff,adaln"))
    loaded = load_pixart_model(str(tiny_folder), adapter=str(tmp_path / "adapter"))
    with torch.no_grad():
        raw_after = loaded.transformer(x, encoder_hidden_states=tokens, timestep=t).sample
        assert torch.equal(loaded.conditioner.encode("anatomy", "chest x-ray").tokens,
                           conditioner.encode("anatomy", "chest x-ray").tokens)
    assert torch.equal(raw_before, raw_after)
    assert np.array_equal(before, edit_images(loaded))
    assert loaded.revision.startswith(base.revision + "+")


def test_adapter_for_another_base_is_refused_before_touching_it(tiny_folder, tmp_path):
    from diffusers import PixArtTransformer2DModel

    base = load_pixart_model(str(tiny_folder))
    add_lora(base.transformer, rank=2)
    save_adapter(tmp_path / "adapter", base.transformer, None, base_model=str(tiny_folder),
                 base_revision=None, rank=2, alpha=2, targets=target_modules("attn,ff,adaln"))
    other = build_tiny_pixart()
    other.register_modules(transformer=PixArtTransformer2DModel(
        num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=8, num_layers=1,
        cross_attention_dim=24, sample_size=8, patch_size=2, caption_channels=16,
        norm_num_groups=4, use_additional_conditions=False))
    other.save_pretrained(tmp_path / "other", safe_serialization=True)
    with pytest.raises(MedEditError, match="does not fit this base model"):
        load_pixart_model(str(tmp_path / "other"), adapter=str(tmp_path / "adapter"))
    transformer = PixArtTransformer2DModel.from_pretrained(tmp_path / "other" / "transformer")
    state = {k: v.clone() for k, v in transformer.state_dict().items()}
    with pytest.raises(MedEditError, match=r"lora_A is \[2, 16\], this model needs \[2, 24\]"):
        load_adapter(tmp_path / "adapter", transformer, text_dim=16)
    assert not has_lora(transformer)
    assert all(torch.equal(state[k], v) for k, v in transformer.state_dict().items())


def test_hldf_gradient_reaches_the_lora_weights(tiny_folder):
    model = load_pixart_model(str(tiny_folder))
    lora = add_lora(model.transformer, rank=2)
    with torch.no_grad():  # B starts at zero, which would leave A without gradient
        for name, p in model.transformer.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    encode = model.conditioner.encode
    null = (encode("anatomy", ""), encode("style", ""))
    anatomy, style = encode("anatomy", "chest x-ray"), encode("style", "support devices")
    from pipelines.model.conditioners import branches
    b = branches(*null, anatomy, style)
    b = Branches(b.tokens.expand(2, -1, -1, -1), b.mask.expand(2, -1, -1))
    real = torch.rand(2, 3, 8, 8) * 2 - 1
    alphas = torch.linspace(0.9999, 0.005, 1000)
    loss = hldf_loss(model.transformer, model.vae, b, real, alphas, torch.Generator().manual_seed(0),
                     steps=3)
    loss.backward()
    grads = {n: p.grad for n, p in model.transformer.named_parameters() if "lora_" in n}
    assert len(grads) == len(lora)
    assert all(g is not None for g in grads.values())
    for kind in ("lora_A", "lora_B"):
        assert any(g.abs().sum() > 0 for n, g in grads.items() if kind in n)
    assert float(colour_loss(real, real)) == 0.0


def test_differentiable_sampler_matches_without_checkpointing(tiny_folder):
    model = load_pixart_model(str(tiny_folder))
    encode = model.conditioner.encode
    from pipelines.model.conditioners import branches
    b = branches(encode("anatomy", ""), encode("style", ""), encode("anatomy", "chest x-ray"),
                 encode("style", ""))
    noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    alphas = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000), 0)
    with torch.no_grad():
        plain = dpm_solver_sample(model.transformer, noise, b, alphas, 4, use_checkpoint=False)
    checked = dpm_solver_sample(model.transformer, noise, b, alphas, 4)
    assert torch.allclose(plain, checked.detach()) and torch.isfinite(plain).all()


def test_bad_training_data_fails_before_loading(tiny_folder, tmp_path, capsys):
    argv = ["train", "lora", "--model", str(tiny_folder), "--data", str(tmp_path), "--out", str(tmp_path / "a"),
            "--steps", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "metadata.jsonl is missing" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
