"""Adapters in peft's own format: what MedEdit saves, plain peft loads (PeftConfig, PeftModel) with
the same outputs; what plain peft saves, MedEdit loads; the layout before peft's still loads and
converts; every folder has a model card huggingface_hub reads."""

import json

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file, save_file

from pipelines.core.errors import MedEditError
from pipelines.model.adapters import (CARD_FILE, CONFIG_FILE, LEGACY_LORA_FILE, LORA_FILE, PEFT_CONFIG_FILE,
                                      PREFIX, add_lora, convert_legacy_adapter, read_adapter_config,
                                      save_adapter, target_modules)
from pipelines.model.pixart import load_pixart_model
from pipelines.model.projector import DisentangledProjector
from tests.tiny_pixart import T5_DIM

TARGETS = target_modules("attn,ff,adaln")
X = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
TOKENS = torch.randn(2, 5, T5_DIM, generator=torch.Generator().manual_seed(2))
T = torch.tensor([10, 900])


def raw(transformer):
    with torch.no_grad():
        return transformer(X, encoder_hidden_states=TOKENS, timestep=T).sample


def stock_transformer(tiny_folder):
    from diffusers import PixArtTransformer2DModel
    return PixArtTransformer2DModel.from_pretrained(tiny_folder / "transformer").eval()


def trained_lora(tiny_folder):
    """The tiny base with LoRA layers whose B is not zero (as after training)."""
    model = load_pixart_model(str(tiny_folder))
    add_lora(model.transformer, rank=4, alpha=8)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.transformer.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.1)
    return model


@pytest.fixture(scope="module")
def adapter(tiny_folder, tmp_path_factory):
    model = trained_lora(tiny_folder)
    torch.manual_seed(0)
    projector = DisentangledProjector(text_dim=T5_DIM, dim=T5_DIM, anatomy_prior_dim=2, style_prior_dim=1,
                                      hidden_dim=32).eval()
    folder = tmp_path_factory.mktemp("adapters") / "mededit"
    save_adapter(folder, model.transformer, projector, base_model=str(tiny_folder),
                 base_revision=model.revision, rank=4, alpha=8, targets=TARGETS,
                 extra={"max_length": 120, "attributes": [{"name": "nodule", "modality": "cxr",
                                                            "channel": "anatomy", "phrase": "nodule"}],
                        "training": {"steps": 3, "batch": 2}})
    return folder


def test_plain_peft_loads_a_mededit_adapter_with_the_same_outputs(tiny_folder, adapter):
    from peft import LoraConfig, PeftConfig, PeftModel

    config = PeftConfig.from_pretrained(str(adapter))
    assert isinstance(config, LoraConfig) and config.peft_type == "LORA"
    assert config.r == 4 and config.lora_alpha == 8 and set(config.target_modules) == set(TARGETS)
    assert config.base_model_name_or_path == str(tiny_folder)
    assert all(k.startswith(PREFIX) for k in load_file(adapter / LORA_FILE))

    mededit = load_pixart_model(str(adapter))  # the folder names its base model
    peft_model = PeftModel.from_pretrained(stock_transformer(tiny_folder), str(adapter)).eval()
    assert torch.equal(raw(peft_model), raw(mededit.transformer))
    assert not torch.equal(raw(peft_model), raw(stock_transformer(tiny_folder)))  # the LoRA acts
    assert mededit.conditioner.projector is not None
    assert mededit.info.attribute("nodule")["channel"] == "anatomy"


def test_mededit_parts_and_card_sit_beside_peft_files(tiny_folder, adapter):
    meta = json.loads((adapter / CONFIG_FILE).read_text())
    assert meta["format"] == "mededit-adapter/2" and meta["base_model"] == str(tiny_folder)
    assert meta["projector"] and meta["max_length"] == 120
    assert "rank" not in meta  # one source for the LoRA's settings: peft's config
    assert (adapter / "projector" / "config.json").is_file()
    card = ModelCard.load(adapter / CARD_FILE, ignore_metadata_errors=False)
    assert card.data.library_name == "peft" and card.data.pipeline_tag == "text-to-image"
    assert card.data.base_model is None  # a local folder is no Hub id
    assert "PeftModel.from_pretrained" in card.text and "projector/" in card.text
    config = read_adapter_config(adapter)
    assert (config["rank"], config["alpha"], config["target_modules"]) == (4, 8, sorted(TARGETS))


def test_a_hub_base_is_named_in_the_card_and_peft_config(tiny_folder, tmp_path):
    from peft import PeftConfig

    model = trained_lora(tiny_folder)
    commit = "a" * 40
    save_adapter(tmp_path / "a", model.transformer, None, base_model="PixArt-alpha/PixArt-XL-2-512x512",
                 base_revision=commit, rank=4, alpha=8, targets=TARGETS)
    config = PeftConfig.from_pretrained(str(tmp_path / "a"))
    assert config.base_model_name_or_path == "PixArt-alpha/PixArt-XL-2-512x512" and config.revision == commit
    card = ModelCard.load(tmp_path / "a" / CARD_FILE, ignore_metadata_errors=False)
    assert card.data.base_model == "PixArt-alpha/PixArt-XL-2-512x512"
    assert card.data.to_dict()["base_model_relation"] == "adapter"
    assert not (tmp_path / "a" / "projector").exists() and "projector/" not in card.text


def test_an_adapter_saved_by_plain_peft_loads_in_mededit(tiny_folder, tmp_path):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=2, lora_alpha=4, target_modules=["to_q", "to_v"])
    peft_model = get_peft_model(stock_transformer(tiny_folder), config)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1, generator=torch.Generator().manual_seed(3))
    peft_model.save_pretrained(tmp_path / "peft")  # peft names the base from the model: none here
    with pytest.raises(MedEditError, match="names no base model"):
        load_pixart_model(str(tmp_path / "peft"))
    loaded = load_pixart_model(str(tiny_folder), adapter=str(tmp_path / "peft"))
    assert torch.equal(raw(loaded.transformer), raw(peft_model.eval()))
    assert loaded.conditioner.projector is None


def legacy_folder(folder, model, tiny_folder):
    """An adapter as MedEdit wrote it before peft's layout (mededit-adapter/1)."""
    folder.mkdir()
    state = {"transformer." + k[len(PREFIX):]: v for k, v in load_file(model / LORA_FILE).items()}
    save_file(state, folder / LEGACY_LORA_FILE, metadata={"format": "pt"})
    config = {"format": "mededit-adapter/1", "base_model": str(tiny_folder), "base_revision": None,
              "rank": 4, "alpha": 8, "target_modules": TARGETS, "projector": False, "max_length": 120}
    (folder / PEFT_CONFIG_FILE).write_text(json.dumps(config))
    return folder


def test_the_layout_before_peft_still_loads_and_converts(tiny_folder, adapter, tmp_path):
    from peft import PeftModel

    old = legacy_folder(tmp_path / "old", adapter, tiny_folder)
    expected = raw(load_pixart_model(str(adapter)).transformer)
    assert torch.equal(raw(load_pixart_model(str(old)).transformer), expected)
    new = convert_legacy_adapter(old, tmp_path / "new")
    assert torch.equal(raw(PeftModel.from_pretrained(stock_transformer(tiny_folder), str(new))), expected)
    assert torch.equal(raw(load_pixart_model(str(new)).transformer), expected)
    assert json.loads((new / CONFIG_FILE).read_text())["max_length"] == 120
    with pytest.raises(MedEditError, match="already in"):
        convert_legacy_adapter(new, tmp_path / "again")


def test_configs_of_other_schemas_are_refused_by_name(tiny_folder, adapter, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / PEFT_CONFIG_FILE).write_text(json.dumps({"peft_type": "PROMPT_TUNING"}))
    with pytest.raises(MedEditError, match="not a peft LoRA config"):
        load_pixart_model(str(tiny_folder), adapter=str(bad))
    (bad / PEFT_CONFIG_FILE).write_text("{not json")
    with pytest.raises(MedEditError, match="not valid JSON"):
        read_adapter_config(bad)
