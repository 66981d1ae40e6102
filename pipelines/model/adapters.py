"""MedEdit adapters for PixArt: LoRA on the transformer plus an HFFM projector, in one folder.

    adapter/
      pytorch_lora_weights.safetensors   LoRA in diffusers' format (keys `transformer.<module>.lora_A.weight`)
      projector/                         DisentangledProjector.save_pretrained (safetensors); absent
                                         when the adapter was trained on plain T5 channels
      adapter_config.json                base model + revision, rank, alpha, target modules, the base
                                         transformer's config hash, the labels of the alignment priors

PixArtTransformer2DModel has no LoRA mixin, so LoRA goes in and out through peft directly
(inject_adapter_in_model, set_peft_model_state_dict, get_peft_model_state_dict). An adapter is
checked against the base model's shapes before the model is touched.
"""

import hashlib
import json
import logging
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from pipelines.model.projector import DisentangledProjector
from pipelines.core.errors import MedEditError

log = logging.getLogger(__name__)

CONFIG_FILE = "adapter_config.json"
LORA_FILE = "pytorch_lora_weights.safetensors"
PROJECTOR_DIR = "projector"
ADAPTER_NAME = "mededit"
PREFIX = "transformer."
FORMAT = "mededit-adapter/1"
# VG-MedGen puts LoRA on attention, feed-forward and adaLN linears; these are their module names in
# diffusers' PixArtTransformer2DModel (peft matches a name by its dotted suffix).
TARGET_GROUPS = {
    "attn": ("to_q", "to_k", "to_v", "to_out.0"),
    "ff": ("ff.net.0.proj", "ff.net.2"),
    "adaln": ("adaln_single.linear", "timestep_embedder.linear_1", "timestep_embedder.linear_2"),
}


def target_modules(targets) -> list[str]:
    """'attn,ff,adaln' (groups) and/or module names -> the list of module names for peft."""
    names = targets.split(",") if isinstance(targets, str) else list(targets)
    modules = []
    for name in (n.strip() for n in names if n.strip()):
        for module in TARGET_GROUPS.get(name, (name,)):
            if module not in modules:
                modules.append(module)
    if not modules:
        raise MedEditError(f"no LoRA targets given; use groups {', '.join(TARGET_GROUPS)} or module names")
    return modules


def transformer_signature(transformer) -> str:
    """A hash of the transformer's config: equal for checkpoints that share every shape."""
    config = {k: v for k, v in dict(transformer.config).items() if not k.startswith("_")}
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def lora_config(rank: int, alpha: float, modules: list[str]):
    from peft import LoraConfig
    return LoraConfig(r=rank, lora_alpha=alpha, target_modules=modules, lora_dropout=0.0)


def add_lora(transformer, rank: int = 8, alpha: float | None = None, targets="attn,ff,adaln"):
    """Inject fresh LoRA layers (B = 0: the output is unchanged until trained); returns the
    trainable parameters."""
    from peft import inject_adapter_in_model

    if rank < 1:
        raise MedEditError(f"LoRA rank must be at least 1, got {rank}")
    if has_lora(transformer):
        raise MedEditError("this transformer already carries a MedEdit LoRA; load a fresh base model")
    modules = target_modules(targets)
    try:
        inject_adapter_in_model(lora_config(rank, alpha or rank, modules), transformer, ADAPTER_NAME)
    except ValueError as error:  # peft: no module matched
        raise MedEditError(f"LoRA targets {modules} match no layer of this transformer: "
                           f"{str(error).splitlines()[0]}") from None
    return [p for n, p in transformer.named_parameters() if "lora_" in n]


def has_lora(transformer) -> bool:
    return any(ADAPTER_NAME in getattr(m, "lora_A", {}) for m in transformer.modules())


def lora_state_dict(transformer) -> dict[str, torch.Tensor]:
    """The LoRA weights in diffusers' format, float32, contiguous."""
    from peft import get_peft_model_state_dict
    state = get_peft_model_state_dict(transformer, adapter_name=ADAPTER_NAME)
    return {PREFIX + k: v.detach().float().contiguous().cpu() for k, v in state.items()}


def _files_sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in [folder / LORA_FILE, *sorted((folder / PROJECTOR_DIR).glob("*.safetensors"))]:
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def save_adapter(folder, transformer, projector: DisentangledProjector | None, *, base_model: str,
                 base_revision: str | None, rank: int, alpha: float, targets: list[str],
                 extra: dict | None = None) -> Path:
    """Write the adapter folder (files first, the config last: a folder with a config is whole)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).unlink(missing_ok=True)
    tmp = folder / (LORA_FILE + ".tmp")
    save_file(lora_state_dict(transformer), tmp, metadata={"format": "pt"})
    os.replace(tmp, folder / LORA_FILE)
    if projector is not None:
        projector.save_pretrained(folder / PROJECTOR_DIR, safe_serialization=True)
    config = {"format": FORMAT, "base_model": str(base_model), "base_revision": base_revision,
              "base_transformer_signature": transformer_signature(transformer),
              "rank": rank, "alpha": alpha, "target_modules": list(targets),
              "projector": projector is not None, **(extra or {})}
    (folder / (CONFIG_FILE + ".tmp")).write_text(json.dumps(config, indent=2) + "\n")
    os.replace(folder / (CONFIG_FILE + ".tmp"), folder / CONFIG_FILE)
    return folder


def read_adapter_config(folder: Path) -> dict:
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise MedEditError(f"'{folder}' is not a MedEdit adapter: {CONFIG_FILE} is missing")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MedEditError(f"'{path}' is not valid JSON: {error}") from None
    needed = ("base_model", "rank", "alpha", "target_modules")
    missing = [k for k in needed if k not in config]
    if missing or config.get("format") != FORMAT:
        raise MedEditError(f"'{path}' is not a {FORMAT} config (missing: {', '.join(missing) or 'format'})")
    if not (Path(folder) / LORA_FILE).is_file():
        raise MedEditError(f"adapter '{folder}' lacks {LORA_FILE}")
    return config


def _linear_shape(transformer, module_name: str):
    try:
        module = transformer.get_submodule(module_name)
    except AttributeError:
        return None
    module = getattr(module, "base_layer", module)
    return (module.in_features, module.out_features) if isinstance(module, torch.nn.Linear) else None


def check_adapter(folder: Path, config: dict, transformer, text_dim: int) -> None:
    """Every LoRA tensor fits a linear layer of this transformer, and the projector its T5 and
    caption width; else MedEditError naming the first misfits. Reads shapes only."""
    problems = []
    rank = config["rank"]
    with safe_open(folder / LORA_FILE, framework="pt") as f:
        for key in f.keys():
            shape = tuple(f.get_slice(key).get_shape())
            if not key.startswith(PREFIX) or not key.endswith((".lora_A.weight", ".lora_B.weight")):
                problems.append(f"unexpected tensor {key}")
                continue
            module_name, kind = key[len(PREFIX):].rsplit(".", 2)[:2]
            fits = _linear_shape(transformer, module_name)
            if fits is None:
                problems.append(f"{module_name} is not a linear layer of this model")
                continue
            want = (rank, fits[0]) if kind == "lora_A" else (fits[1], rank)
            if shape != want:
                problems.append(f"{module_name}.{kind} is {list(shape)}, this model needs {list(want)}")
    if config.get("projector"):
        path = folder / PROJECTOR_DIR / "config.json"
        if not path.is_file():
            problems.append(f"{PROJECTOR_DIR}/config.json is missing")
        else:
            projector = json.loads(path.read_text())
            caption = transformer.config.caption_channels
            if projector.get("text_dim") != text_dim:
                problems.append(f"projector reads {projector.get('text_dim')}-d text states, "
                                f"this model's T5 gives {text_dim}")
            if projector.get("dim") != caption:
                problems.append(f"projector writes {projector.get('dim')}-d tokens, "
                                f"this transformer reads {caption}")
    if problems:
        shown = "; ".join(problems[:4]) + ("; ..." if len(problems) > 4 else "")
        raise MedEditError(f"adapter '{folder}' does not fit this base model (it was trained on "
                           f"{config['base_model']}): {shown}")
    if config.get("base_transformer_signature") not in (None, transformer_signature(transformer)):
        log.warning("adapter %s was trained on %s whose transformer config differs from this one; "
                    "shapes fit, results may not", folder, config["base_model"])


def load_adapter(folder, transformer, text_dim: int) -> tuple[DisentangledProjector | None, dict]:
    """Check, then inject the LoRA into `transformer` in place; returns (projector, config)."""
    from peft import inject_adapter_in_model, set_peft_model_state_dict

    folder = Path(folder)
    config = read_adapter_config(folder)
    if has_lora(transformer):
        raise MedEditError("this transformer already carries a MedEdit LoRA; load a fresh base model")
    check_adapter(folder, config, transformer, text_dim)  # before anything is changed
    state = {k[len(PREFIX):]: v for k, v in load_file(folder / LORA_FILE).items()}
    inject_adapter_in_model(lora_config(config["rank"], config["alpha"], config["target_modules"]),
                            transformer, ADAPTER_NAME)
    result = set_peft_model_state_dict(transformer, state, adapter_name=ADAPTER_NAME)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise MedEditError(f"adapter '{folder}': {len(unexpected)} LoRA tensors matched no layer, "
                           f"e.g. {unexpected[0]}")
    projector = None
    if config.get("projector"):
        projector = DisentangledProjector.from_pretrained(folder / PROJECTOR_DIR, use_safetensors=True)
    for parameter in transformer.parameters():
        parameter.requires_grad_(False)
    return projector, {**config, "weights_sha256": _files_sha256(folder)}
