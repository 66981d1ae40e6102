"""MedEdit adapters for PixArt: peft's LoRA on the transformer plus MedEdit's own parts, one folder.

    adapter/
      adapter_config.json         peft's LoraConfig (peft_type, r, lora_alpha, target_modules, base model)
      adapter_model.safetensors   peft's LoRA tensors (keys `base_model.model.<module>.lora_A.weight`):
                                  `PeftModel.from_pretrained(transformer, folder)` loads them without MedEdit
      mededit_adapter.json        MedEdit's parts: base model id + revision, the base transformer's config
                                  hash, whether a projector is there, text window, attributes, training
      projector/                  DisentangledProjector.save_pretrained (safetensors); absent when the
                                  adapter was trained on plain T5 channels
      README.md                   a model card (library_name peft, base_model, what each file is)

A plain peft LoRA for PixArt's transformer (no mededit_adapter.json) loads too; its base model is
peft's `base_model_name_or_path`. Folders written before this layout (adapter_config.json in
MedEdit's own schema, "format": "mededit-adapter/1", with pytorch_lora_weights.safetensors) still
load; `convert_legacy_adapter` rewrites one in this layout.

PixArtTransformer2DModel has no LoRA mixin, so LoRA goes in and out through peft directly
(inject_adapter_in_model, set_peft_model_state_dict, get_peft_model_state_dict). An adapter is
checked against the base model's shapes before the model is touched. peft is imported inside the
functions that use it: importing it costs seconds that the command line's start-up does not need.
"""

import copy
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save as save_safetensors

from pipelines.core.errors import MedEditError
from pipelines.core.files import content_hash, write_atomic
from pipelines.model.adapter_card import adapter_card, is_hub_id
from pipelines.model.projector import DisentangledProjector

log = logging.getLogger(__name__)

PEFT_CONFIG_FILE = "adapter_config.json"  # peft's names (peft.utils.constants)
LORA_FILE = "adapter_model.safetensors"
CONFIG_FILE = "mededit_adapter.json"  # MedEdit's own parts, written last: a folder with it is whole
PROJECTOR_DIR = "projector"
CARD_FILE = "README.md"
ADAPTER_NAME = "mededit"
PREFIX = "base_model.model."  # what PeftModel.save_pretrained puts before a module name
FORMAT = "mededit-adapter/2"
LEGACY_FORMAT, LEGACY_LORA_FILE, LEGACY_PREFIX = "mededit-adapter/1", "pytorch_lora_weights.safetensors", "transformer."
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
    if rank < 1:
        raise MedEditError(f"LoRA rank must be at least 1, got {rank}")
    _inject(transformer, lora_config(rank, alpha or rank, target_modules(targets)))
    return [p for n, p in transformer.named_parameters() if "lora_" in n]


def _inject(transformer, config) -> None:
    from peft import inject_adapter_in_model

    if has_lora(transformer):
        raise MedEditError("this transformer already carries a MedEdit LoRA; load a fresh base model")
    try:
        inject_adapter_in_model(config, transformer, ADAPTER_NAME)
    except ValueError as error:  # peft: no module matched
        raise MedEditError(f"LoRA targets {sorted(config.target_modules)} match no layer of this "
                           f"transformer: {str(error).splitlines()[0]}") from None


def has_lora(transformer) -> bool:
    return any(ADAPTER_NAME in getattr(m, "lora_A", {}) for m in transformer.modules())


def lora_state_dict(transformer) -> dict[str, torch.Tensor]:
    """The LoRA weights as PeftModel.save_pretrained writes them: float32, contiguous."""
    from peft import get_peft_model_state_dict
    state = get_peft_model_state_dict(transformer, adapter_name=ADAPTER_NAME)
    return {PREFIX + k: v.detach().float().contiguous().cpu() for k, v in state.items()}


def _peft_config(transformer, base_model: str, base_revision: str | None, rank, alpha, targets):
    """The config the LoRA was injected with, as peft saves it (inference mode, base model named)."""
    injected = getattr(transformer, "peft_config", {}).get(ADAPTER_NAME)
    config = copy.deepcopy(injected) if injected is not None else lora_config(rank, alpha, list(targets))
    config.base_model_name_or_path = str(base_model)
    hub_commit = base_revision and len(base_revision) == 40 and is_hub_id(str(base_model))
    config.revision = base_revision if hub_commit else None  # peft passes it to from_pretrained
    config.inference_mode = True
    if isinstance(config.target_modules, set):
        config.target_modules = sorted(config.target_modules)  # the same bytes in every process
    return config


def _write_peft_config(folder: Path, config) -> None:
    """peft's own writer (with the base class it was made for, as PeftModel.save_pretrained adds)."""
    mapping = {"base_model_class": "PixArtTransformer2DModel",
               "parent_library": "diffusers.models.transformers.pixart_transformer_2d"}
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        config.save_pretrained(tmp, auto_mapping_dict=mapping)
        os.replace(Path(tmp) / PEFT_CONFIG_FILE, folder / PEFT_CONFIG_FILE)


def _write_folder(folder, lora: dict, config, meta: dict, write_projector) -> Path:
    """Files first, mededit_adapter.json last: a folder that has it is whole."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in (CONFIG_FILE, LEGACY_LORA_FILE):
        (folder / stale).unlink(missing_ok=True)
    write_atomic(folder / LORA_FILE, save_safetensors(lora, metadata={"format": "pt"}))
    shutil.rmtree(folder / PROJECTOR_DIR, ignore_errors=True)
    if meta["projector"]:
        write_projector(folder / PROJECTOR_DIR)
    _write_peft_config(folder, config)
    write_atomic(folder / CARD_FILE, adapter_card(meta, config.to_dict(), files_note=_files()).encode())
    write_atomic(folder / CONFIG_FILE, (json.dumps(meta, indent=2) + "\n").encode())
    return folder


def _files() -> dict[str, str]:
    return {PEFT_CONFIG_FILE: "peft's LoraConfig", LORA_FILE: "the LoRA tensors (peft's layout)",
            CONFIG_FILE: "MedEdit's parts: base model and revision, text window, attributes, training",
            PROJECTOR_DIR + "/": "the HFFM projector (DisentangledProjector, diffusers ModelMixin)"}


def save_adapter(folder, transformer, projector: DisentangledProjector | None, *, base_model: str,
                 base_revision: str | None, rank: int, alpha: float, targets: list[str],
                 extra: dict | None = None) -> Path:
    """Write the adapter folder: peft's two files, MedEdit's parts beside them, a model card."""
    meta = {"format": FORMAT, "base_model": str(base_model), "base_revision": base_revision,
            "base_transformer_signature": transformer_signature(transformer),
            "projector": projector is not None, **(extra or {})}
    config = _peft_config(transformer, base_model, base_revision, rank, alpha, targets)
    return _write_folder(folder, lora_state_dict(transformer), config, meta,
                         lambda path: projector.save_pretrained(path, safe_serialization=True))


# ---------------------------------------------------------------- reading

@dataclass(frozen=True)
class AdapterFiles:
    """An adapter folder read: MedEdit's view of it, and where peft's parts are."""
    folder: Path
    config: dict  # base_model, base_revision, rank, alpha, target_modules, projector, ...
    lora_config: object  # the peft LoraConfig to inject
    weights: Path
    prefix: str  # before each module name in `weights`
    legacy: bool = False


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MedEditError(f"'{path}' is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise MedEditError(f"'{path}' is not a JSON object")
    return data


def is_adapter_folder(folder: Path) -> bool:
    folder = Path(folder)
    return ((folder / CONFIG_FILE).is_file() or (folder / PEFT_CONFIG_FILE).is_file()) \
        and not (folder / "model_index.json").exists()


def read_adapter(folder) -> AdapterFiles:
    folder = Path(folder)
    if not (folder / PEFT_CONFIG_FILE).is_file():
        raise MedEditError(f"'{folder}' is not an adapter: {PEFT_CONFIG_FILE} is missing")
    peft_json = _read_json(folder / PEFT_CONFIG_FILE)
    if peft_json.get("format") == LEGACY_FORMAT and not (folder / CONFIG_FILE).exists():
        return _read_legacy(folder, peft_json)
    if peft_json.get("peft_type") != "LORA":
        found = peft_json.get("peft_type") or peft_json.get("format") or "no peft_type"
        raise MedEditError(f"'{folder / PEFT_CONFIG_FILE}' is not a peft LoRA config ({found})")
    meta = {"base_model": peft_json.get("base_model_name_or_path"),
            "base_revision": peft_json.get("revision"), "projector": False}
    if (folder / CONFIG_FILE).is_file():
        meta = _read_json(folder / CONFIG_FILE)
        if meta.get("format") != FORMAT:
            raise MedEditError(f"'{folder / CONFIG_FILE}' is not a {FORMAT} file")
    if not (folder / LORA_FILE).is_file():
        raise MedEditError(f"adapter '{folder}' lacks {LORA_FILE}")
    from peft import LoraConfig
    try:
        config = LoraConfig.from_pretrained(str(folder))
    except (TypeError, ValueError) as error:
        raise MedEditError(f"'{folder / PEFT_CONFIG_FILE}' is not a LoRA config peft reads: {error}") from None
    modules = config.target_modules
    described = {"rank": config.r, "alpha": config.lora_alpha,
                 "target_modules": sorted(modules) if isinstance(modules, (set, list)) else modules}
    return AdapterFiles(folder, {**meta, **described}, config, folder / LORA_FILE, PREFIX)


def _read_legacy(folder: Path, config: dict) -> AdapterFiles:
    missing = [k for k in ("base_model", "rank", "alpha", "target_modules") if k not in config]
    if missing:
        raise MedEditError(f"'{folder / PEFT_CONFIG_FILE}' is not a {LEGACY_FORMAT} config "
                           f"(missing: {', '.join(missing)})")
    if not (folder / LEGACY_LORA_FILE).is_file():
        raise MedEditError(f"adapter '{folder}' lacks {LEGACY_LORA_FILE}")
    log.info("adapter %s is in the layout before peft's (%s); convert_legacy_adapter(folder, out) in "
             "pipelines.model.adapters rewrites it so that peft loads it", folder, LEGACY_FORMAT)
    peft = lora_config(config["rank"], config["alpha"], list(config["target_modules"]))
    return AdapterFiles(folder, config, peft, folder / LEGACY_LORA_FILE, LEGACY_PREFIX, legacy=True)


def read_adapter_config(folder) -> dict:
    """MedEdit's view of an adapter folder (either layout): base model, revision, rank, ..."""
    return read_adapter(folder).config


def convert_legacy_adapter(folder, out) -> Path:
    """Rewrite a mededit-adapter/1 folder in peft's layout at `out` (the same tensors, renamed)."""
    files = read_adapter(folder)
    if not files.legacy:
        raise MedEditError(f"adapter '{folder}' is already in {FORMAT} layout")
    if Path(out).resolve() == files.folder.resolve():
        raise MedEditError("write the converted adapter to another folder")
    lora = {PREFIX + k[len(LEGACY_PREFIX):]: v for k, v in load_file(files.weights).items()}
    meta = {k: v for k, v in files.config.items() if k not in ("format", "rank", "alpha", "target_modules")}
    meta = {"format": FORMAT, **meta, "projector": bool(files.config.get("projector"))}
    config = files.lora_config
    config.base_model_name_or_path = str(meta["base_model"])
    config.inference_mode = True
    source = files.folder / PROJECTOR_DIR
    return _write_folder(out, lora, config, meta, lambda path: shutil.copytree(source, path))


# ---------------------------------------------------------------- checking and loading

def _linear_shape(transformer, module_name: str):
    try:
        module = transformer.get_submodule(module_name)
    except AttributeError:
        return None
    module = getattr(module, "base_layer", module)
    return (module.in_features, module.out_features) if isinstance(module, torch.nn.Linear) else None


def _lora_problems(files: AdapterFiles, transformer) -> list[str]:
    problems = []
    rank = None if files.lora_config.rank_pattern else files.lora_config.r
    with safe_open(files.weights, framework="pt") as f:
        for key in f.keys():
            shape = tuple(f.get_slice(key).get_shape())
            if not key.startswith(files.prefix) or not key.endswith((".lora_A.weight", ".lora_B.weight")):
                problems.append(f"unexpected tensor {key} (MedEdit loads LoRA on linear layers)")
                continue
            module_name, kind = key[len(files.prefix):].rsplit(".", 2)[:2]
            fits = _linear_shape(transformer, module_name)
            if fits is None:
                problems.append(f"{module_name} is not a linear layer of this model")
                continue
            r = rank or shape[0 if kind == "lora_A" else 1]
            want = (r, fits[0]) if kind == "lora_A" else (fits[1], r)
            if shape != want:
                problems.append(f"{module_name}.{kind} is {list(shape)}, this model needs {list(want)}")
    return problems


def _projector_problems(files: AdapterFiles, transformer, text_dim: int) -> list[str]:
    path = files.folder / PROJECTOR_DIR / "config.json"
    if not path.is_file():
        return [f"{PROJECTOR_DIR}/config.json is missing"]
    projector, problems = _read_json(path), []
    caption = transformer.config.caption_channels
    if projector.get("text_dim") != text_dim:
        problems.append(f"projector reads {projector.get('text_dim')}-d text states, "
                        f"this model's T5 gives {text_dim}")
    if projector.get("dim") != caption:
        problems.append(f"projector writes {projector.get('dim')}-d tokens, this transformer reads {caption}")
    return problems


def check_adapter(files: AdapterFiles, transformer, text_dim: int) -> None:
    """Every LoRA tensor fits a linear layer of this transformer, and the projector its T5 and
    caption width; else MedEditError naming the first misfits. Reads shapes only."""
    problems = _lora_problems(files, transformer)
    if files.config.get("projector"):
        problems += _projector_problems(files, transformer, text_dim)
    if problems:
        shown = "; ".join(problems[:4]) + ("; ..." if len(problems) > 4 else "")
        raise MedEditError(f"adapter '{files.folder}' does not fit this base model (it was trained on "
                           f"{files.config['base_model'] or 'a base it does not name'}): {shown}")
    if files.config.get("base_transformer_signature") not in (None, transformer_signature(transformer)):
        log.warning("adapter %s was trained on %s whose transformer config differs from this one; "
                    "shapes fit, results may not", files.folder, files.config["base_model"])


def _files_sha256(files: AdapterFiles) -> str:
    paths = [files.weights, *sorted((files.folder / PROJECTOR_DIR).glob("*.safetensors"))]
    return content_hash([path for path in paths if path.is_file()], length=64)


def load_adapter(folder, transformer, text_dim: int) -> tuple[DisentangledProjector | None, dict]:
    """Check, then inject the LoRA into `transformer` in place; returns (projector, config)."""
    from peft import set_peft_model_state_dict

    files = read_adapter(folder)
    if has_lora(transformer):
        raise MedEditError("this transformer already carries a MedEdit LoRA; load a fresh base model")
    check_adapter(files, transformer, text_dim)  # before anything is changed
    state = {k[len(files.prefix):]: v for k, v in load_file(files.weights).items()}
    _inject(transformer, copy.deepcopy(files.lora_config))
    result = set_peft_model_state_dict(transformer, state, adapter_name=ADAPTER_NAME)
    unexpected = getattr(result, "unexpected_keys", [])
    missing = [k for k in getattr(result, "missing_keys", []) if "lora_" in k]
    if unexpected or missing:
        raise MedEditError(f"adapter '{folder}': {len(unexpected)} LoRA tensors matched no layer and "
                           f"{len(missing)} LoRA layers got no tensor, e.g. {(unexpected + missing)[0]}")
    projector = None
    if files.config.get("projector"):
        projector = DisentangledProjector.from_pretrained(files.folder / PROJECTOR_DIR, use_safetensors=True)
    for parameter in transformer.parameters():
        parameter.requires_grad_(False)
    return projector, {**files.config, "weights_sha256": _files_sha256(files)}
