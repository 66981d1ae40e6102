"""A stock PixArt checkpoint as a MedEdit model: load_model routing, T5 channels, editing, revisions."""

import numpy as np
import pytest
import torch

from pipelines.editing.pipeline import MedEditPipeline
from pipelines.model.loading import load_model
from pipelines.model.pixart import T5Conditioner, folder_revision, load_pixart_model
from pipelines.editing.requests import Edit, Sampling, Series
from pipelines.editing.sampling import Branches, added_conditions, guided_noise
from pipelines.model.sources import encode_prompts_t5

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def pipeline(tiny_folder):
    return MedEditPipeline(load_model(str(tiny_folder)))


def test_load_model_routes_a_pixart_folder(tiny_folder, pipeline):
    model = pipeline.model
    assert isinstance(model.conditioner, T5Conditioner) and model.conditioner.projector is None
    assert model.model_id == str(tiny_folder)
    assert model.revision == folder_revision(tiny_folder) and len(model.revision) == 12
    assert model.info.image_size == 8  # sample_size 8 x VAE factor 1
    assert model.info.defaults == {"steps": 20, "anatomy_scale": 4.5, "style_scale": 4.5, "swap_at": 0.2,
                                   "locality": 0.0}
    assert model.info.attribute("effusion")["channel"] == "anatomy"
    # An empty channel is T5's encoding of "" (PixArt's unconditional), each channel encoded apart.
    empty = model.conditioner.encode("style", "")
    reference = encode_prompts_t5(model.conditioner.text, [""], 120)
    assert torch.equal(empty.tokens, reference.embeds) and torch.equal(empty.mask, reference.mask)
    anatomy = model.conditioner.encode("anatomy", "chest x-ray with pleural effusion")
    assert anatomy.tokens.shape == (1, 120, 16) and anatomy.truncated == ""


def test_edit_sliders_and_series_run_on_pixart(pipeline):
    s = Sampling("chest x-ray", "support devices", seed=3, steps=4, anatomy_scale=4.5, style_scale=4.5)
    e = Edit(to_anatomy="chest x-ray with pleural effusion", sliders={"support_devices": -1.0},
             swap_at=0.25)
    result = pipeline.edit(s, e)
    assert result.neutral.shape == (8, 8, 3) and result.neutral.dtype == np.uint8
    assert not np.array_equal(result.neutral, result.edited)
    assert np.array_equal(pipeline.generate(s), result.neutral)  # same noise, same neutral
    again = pipeline.edit(s, e)
    assert again.prefix_cached and np.array_equal(again.edited, result.edited)
    for mode in ("latent", "embedding"):
        series = pipeline.series(s, e, Series(frames=3, mode=mode, control_points=3))
        assert len(series.frames) == 3 and series.frames[0].shape == (8, 8, 3)
    assert pipeline.settings(s, e)["model_revision"] == pipeline.model.revision


def test_revision_pin_names_the_snapshot_commit(tiny_folder, tmp_path, monkeypatch):
    import shutil
    hub = tmp_path / "hf_home" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = hub / "models--owner--tiny-pixart"
    shutil.copytree(tiny_folder, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    model = load_pixart_model("owner/tiny-pixart", revision=COMMIT)
    assert model.revision == COMMIT and model.model_id == "owner/tiny-pixart"


def test_content_revision_changes_with_the_weights(tiny_folder, tmp_path):
    import shutil
    copy = shutil.copytree(tiny_folder, tmp_path / "copy")
    assert folder_revision(copy) == folder_revision(tiny_folder)
    weights = copy / "transformer" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert folder_revision(copy) != folder_revision(tiny_folder)


def test_guidance_passes_micro_conditions_when_the_transformer_reads_them():
    from diffusers import PixArtTransformer2DModel
    torch.manual_seed(0)
    transformer = PixArtTransformer2DModel(
        num_attention_heads=3, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=1,
        cross_attention_dim=24, sample_size=8, patch_size=2, caption_channels=16,
        norm_num_groups=4, use_additional_conditions=True).eval()  # width divisible by 3 for them
    latents = torch.randn(2, 4, 8, 8)
    conditions = added_conditions(transformer, latents)
    assert conditions["resolution"].tolist() == [[64.0, 64.0]] * 2
    assert conditions["aspect_ratio"].tolist() == [[1.0]] * 2
    branches = Branches(torch.randn(2, 3, 5, 16), torch.ones(2, 3, 5))
    with torch.no_grad():
        eps = guided_noise(transformer, latents, 500, branches, 4.5, 4.5)
    assert eps.shape == latents.shape and torch.isfinite(eps).all()
