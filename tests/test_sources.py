"""Bring-your-own PixArt: local folders, the Hub cache offline, checks before loading, T5 prompts."""

import json
import shutil

import pytest
import torch

from pipelines.core.errors import MedEditError
from pipelines.model import hub
from pipelines.model.sources import (check_pixart_folder, encode_prompts_t5, load_pixart,
                               resolve_source)
from tests.tiny_pixart import save_tiny_pixart

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """An empty HF_HOME with offline mode on: nothing can come from the network."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "hf_home" / "hub"


def put_in_cache(hub, repo_id: str, folder, ref: str = "main"):
    """Lay `folder` out as huggingface_hub's cache does: models--o--n/snapshots/<commit>, refs/<ref>."""
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(folder, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / ref).write_text(COMMIT)
    return repo / "snapshots" / COMMIT


def copy_of(folder, tmp_path, name="copy"):
    return shutil.copytree(folder, tmp_path / name)


def test_local_folder_loads_and_generates(tiny_folder):
    assert resolve_source(str(tiny_folder)) == tiny_folder
    assert check_pixart_folder(tiny_folder) == "pixart-alpha"
    pipe = load_pixart(tiny_folder)
    assert type(pipe).__name__ == "PixArtAlphaPipeline"
    image = pipe("chest x-ray with pleural effusion", num_inference_steps=2, height=16, width=16,
                 use_resolution_binning=False, output_type="np",
                 generator=torch.Generator().manual_seed(0)).images
    assert image.shape == (1, 16, 16, 3) and float(image.min()) >= 0 and float(image.max()) <= 1


def test_sigma_folder_is_recognised(tmp_path):
    folder = save_tiny_pixart(tmp_path / "sigma", kind="sigma")
    assert check_pixart_folder(folder) == "pixart-sigma"
    assert type(load_pixart(folder)).__name__ == "PixArtSigmaPipeline"


def test_t5_prompts_match_the_pipeline_and_report_truncation(tiny_folder, caplog):
    pipe = load_pixart(tiny_folder)
    embeds, mask = encode_prompts_t5(pipe, ["Chest X-ray", "pleural effusion, cardiomegaly"],
                                     max_length=12)
    assert embeds.shape == (2, 12, 16) and mask.shape == (2, 12)
    reference, reference_mask, _, _ = pipe.encode_prompt(
        ["chest x-ray", "pleural effusion, cardiomegaly"], do_classifier_free_guidance=False,
        clean_caption=False, max_sequence_length=12)
    assert torch.allclose(embeds, reference, atol=1e-6) and torch.equal(mask, reference_mask)
    encoded = encode_prompts_t5(pipe, ["chest " * 20 + "ruler", "ink"], max_length=8)
    assert encoded.truncated[0].endswith("ruler") and encoded.truncated[1] == ""
    assert "prompt cut" in caplog.text
    with pytest.raises(MedEditError, match="must be text"):
        encode_prompts_t5(pipe, [3])


def test_offline_uncached_repo_fails_clearly(empty_hub):
    with pytest.raises(MedEditError, match=r"'someone/not-cached' \(revision main\) is not in the local "
                                           r"Hugging Face cache.*pass a local folder"):
        resolve_source("someone/not-cached")


def test_cached_snapshot_resolves_offline(empty_hub, tiny_folder):
    snapshot = put_in_cache(empty_hub, "owner/tiny-pixart", tiny_folder)
    assert resolve_source("owner/tiny-pixart") == snapshot  # HF_HUB_OFFLINE=1 from the env
    assert resolve_source("owner/tiny-pixart", revision=COMMIT, offline=True) == snapshot
    assert type(load_pixart("owner/tiny-pixart")).__name__ == "PixArtAlphaPipeline"
    with pytest.raises(MedEditError, match="revision v2"):
        resolve_source("owner/tiny-pixart", revision="v2")


def test_unreachable_hub_falls_back_to_cache(empty_hub, tiny_folder, monkeypatch):
    import huggingface_hub

    snapshot = put_in_cache(empty_hub, "owner/tiny-pixart", tiny_folder)
    real = huggingface_hub.snapshot_download
    calls = []

    def no_network(repo_id, **kwargs):
        calls.append(kwargs.get("local_files_only", False))
        if not kwargs.get("local_files_only"):
            assert "*.safetensors" in kwargs["allow_patterns"]
            assert not any(p.endswith((".bin", ".pt", ".ckpt")) for p in kwargs["allow_patterns"])
            raise huggingface_hub.errors.LocalEntryNotFoundError("connection refused")
        return real(repo_id, **kwargs)

    monkeypatch.setattr(hub, "snapshot_download", no_network)
    assert resolve_source("owner/tiny-pixart", offline=False) == snapshot
    assert calls == [False, True]
    with pytest.raises(MedEditError, match="cannot be reached: LocalEntryNotFoundError: connection"):
        resolve_source("owner/other", offline=False)


@pytest.mark.parametrize("error_name, message", [
    ("RepositoryNotFoundError", "does not exist on the Hugging Face Hub"),
    ("RevisionNotFoundError", "has no revision 'nope'"),
    ("GatedRepoError", "is gated"),
])
def test_hub_errors_become_clear_messages(error_name, message, monkeypatch, empty_hub):
    import httpx2
    import huggingface_hub

    def missing(repo_id, **kwargs):
        response = httpx2.Response(404, request=httpx2.Request("GET", "https://huggingface.co"))
        raise getattr(huggingface_hub.errors, error_name)("404", response=response)

    monkeypatch.setattr(hub, "snapshot_download", missing)
    with pytest.raises(MedEditError, match=message):
        resolve_source("owner/name", revision="nope", offline=False)


@pytest.mark.parametrize("source", ["", "not a repo id", "a/b/c", "../x/y", "owner/"])
def test_garbage_sources_fail_clearly(source, empty_hub):
    with pytest.raises(MedEditError, match="local folder"):
        resolve_source(source)


def test_file_source_fails_clearly(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x")
    with pytest.raises(MedEditError, match="is a file"):
        resolve_source(str(tmp_path / "model.safetensors"))


def test_non_pixart_folders_fail_before_loading(tiny_folder, tmp_path):
    with pytest.raises(MedEditError, match="model_index.json is missing"):
        check_pixart_folder(tmp_path)
    other = copy_of(tiny_folder, tmp_path, "sd")
    index = json.loads((other / "model_index.json").read_text())
    (other / "model_index.json").write_text(json.dumps({**index, "_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(MedEditError, match="StableDiffusionPipeline pipeline; expected one of"):
        load_pixart(other)
    partial = copy_of(tiny_folder, tmp_path, "partial")
    shutil.rmtree(partial / "vae")
    with pytest.raises(MedEditError, match="missing vae"):
        load_pixart(partial)
    remote = copy_of(tiny_folder, tmp_path, "remote")
    (remote / "model_index.json").write_text(json.dumps({**index, "transformer": ["my_code", "Net"]}))
    with pytest.raises(MedEditError, match="no remote code"):
        check_pixart_folder(remote)


def test_pickle_only_weights_are_refused(tiny_folder, tmp_path, monkeypatch):
    pickled = copy_of(tiny_folder, tmp_path, "pickled")
    weights = pickled / "transformer" / "diffusion_pytorch_model.safetensors"
    weights.rename(weights.with_suffix(".bin"))
    import diffusers

    def must_not_load(*args, **kwargs):
        raise AssertionError("weights were read before the folder was checked")

    monkeypatch.setattr(diffusers.PixArtAlphaPipeline, "from_pretrained", must_not_load)
    with pytest.raises(MedEditError, match="pickle weights are not loaded; convert to safetensors"):
        load_pixart(pickled)
    empty = copy_of(tiny_folder, tmp_path, "empty")
    (empty / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(MedEditError, match="no weights"):
        check_pixart_folder(empty)
