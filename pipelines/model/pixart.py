"""A PixArt-alpha/Sigma checkpoint (Hub id or folder), optionally with a MedEdit adapter, as a
LoadedModel that MedEditPipeline drives exactly like the embedded model.

Disentanglement without a trained projector: the anatomy and the style prompt are encoded apart by
the checkpoint's own T5 and their token sequences joined (conditioners.branches), so two-scale
guidance, the swap at t, sliders and series all work on a stock checkpoint. An adapter (LoRA on the
transformer + an HFFM projector, see pipelines/model/adapters.py) puts each channel's T5 states through
its own trained branch, with learned null tokens for an empty channel.
"""

import hashlib
import logging
from pathlib import Path
from types import SimpleNamespace

import torch

from pipelines.core.errors import MedEditError
from pipelines.data.attributes import ATTRIBUTES
from pipelines.model.conditioners import ChannelTokens
from pipelines.model.projector import DisentangledProjector
from pipelines.model.loaded import LoadedModel
from pipelines.model.adapters import is_adapter_folder, load_adapter, read_adapter_config
from pipelines.model.info import ModelInfo
from pipelines.model.sources import check_pixart_folder, encode_prompts_t5, load_pixart, resolve_source

log = logging.getLogger(__name__)

DEFAULTS = {"steps": 20, "anatomy_scale": 4.5, "style_scale": 4.5, "swap_at": 0.2}
T5_TOKENS = {"pixart-alpha": 120, "pixart-sigma": 300}  # the pipelines' own max_sequence_length
SAMPLED_BLOCK = 1 << 16  # bytes hashed at a few places of each large weight file


class T5Conditioner:
    """One channel's prompt -> the checkpoint's own T5 states (+ the adapter's projector branch).

    An empty prompt gives the encoding of "" (PixArt's unconditional) without a projector, the
    branch's learned null tokens with one. Callers keep tokens with `conditioners.cached`.
    """

    def __init__(self, tokenizer, text_encoder, projector: DisentangledProjector | None = None,
                 max_length: int = 120):
        self.text = SimpleNamespace(tokenizer=tokenizer, text_encoder=text_encoder)
        self.projector, self.max_length = projector, max_length

    def states(self, prompts: list[str]):
        """T5 states [B, L, D] and mask [B, L] of several prompts (training uses this too)."""
        return encode_prompts_t5(self.text, prompts, self.max_length)

    def project(self, channel: str, states, mask, is_null):
        if self.projector is None:
            return states, mask
        dtype = next(self.projector.parameters()).dtype
        tokens, mask = self.projector.project(channel, states.to(dtype), mask, is_null)
        return tokens, mask

    @torch.no_grad()
    def encode(self, channel: str, prompt: str) -> ChannelTokens:
        encoded = self.states([prompt])
        is_null = torch.tensor([not prompt.strip()], device=encoded.mask.device)
        tokens, mask = self.project(channel, encoded.embeds, encoded.mask, is_null)
        return ChannelTokens(tokens.float(), mask, encoded.truncated[0])


def folder_revision(folder: Path) -> str:
    """A Hub snapshot's commit hash, else a content hash of a local folder.

    Configs are hashed whole; weight files by size, safetensors header (names, shapes, offsets) and
    a few 64 KiB blocks, so a 20 GB checkpoint is named in milliseconds, not minutes.
    """
    folder = Path(folder).resolve()
    if folder.parent.name == "snapshots" and len(folder.name) == 40:
        return folder.name  # huggingface_hub names snapshot folders by commit
    digest = hashlib.sha256()
    # domain/ (the domain check's statistics, fitted later) is not part of the checkpoint.
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "domain" not in p.relative_to(folder).parts):
        digest.update(str(path.relative_to(folder)).encode())
        size = path.stat().st_size
        digest.update(str(size).encode())
        with path.open("rb") as f:
            if not path.name.endswith(".safetensors") or size <= 8 * SAMPLED_BLOCK:
                digest.update(f.read())
                continue
            header = int.from_bytes(f.read(8), "little")
            digest.update(f.read(min(header, size - 8)))
            for where in (0.25, 0.5, 0.75, 1.0):
                f.seek(max(0, int(size * where) - SAMPLED_BLOCK))
                digest.update(f.read(SAMPLED_BLOCK))
    return digest.hexdigest()[:12]


def is_pixart_source(folder: Path) -> bool:
    """A Hub repo id (no such folder), a diffusers PixArt pipeline or an adapter: the
    bring-your-own-model path, as opposed to a MedEdit folder."""
    return not folder.is_dir() or (folder / "model_index.json").exists() or is_adapter_folder(folder)


def pixart_info(source: str, kind: str, image_size: int, text_encoder_name: str,
                adapter_config: dict | None) -> ModelInfo:
    attributes = [{"name": a.name, "modality": a.modality, "channel": a.channel, "phrase": a.phrase}
                  for a in ATTRIBUTES]
    training = {}
    if adapter_config:
        known = {a["name"] for a in attributes}
        # Labels the adapter was trained on that the registry lacks become sliders too.
        attributes += [a for a in adapter_config.get("attributes", []) if a["name"] not in known]
        training = {"adapter": adapter_config}
    return ModelInfo(name=f"{Path(source).name or source} ({kind})", image_size=image_size,
                     text_encoder=text_encoder_name, conditioning="separate",
                     attributes=attributes, defaults=dict(DEFAULTS), training=training)


def load_pixart_model(source: str, revision: str | None = None, adapter: str | None = None,
                      adapter_revision: str | None = None, dtype: torch.dtype = torch.float32,
                      device: str | torch.device = "cpu") -> LoadedModel:
    """A PixArt checkpoint as a LoadedModel; `source` may also be an adapter folder (its
    adapter_config.json names the base model and revision)."""
    source = str(source)
    folder = resolve_source(source, revision)
    if adapter is None and is_adapter_folder(folder):
        # An adapter (folder or Hub repo) names its base model and the revision it was trained on.
        adapter, adapter_revision, adapter_folder = source, None, folder
        config = read_adapter_config(folder)
        if not config.get("base_model"):
            raise MedEditError(f"adapter '{source}' names no base model (peft's base_model_name_or_path "
                               "is empty): give the base model as the model and this folder as the adapter")
        source, revision = config["base_model"], config.get("base_revision")
        folder = resolve_source(source, revision)
    elif adapter is not None:
        adapter_folder = resolve_source(str(adapter), adapter_revision)
    kind = check_pixart_folder(folder)
    pipe = load_pixart(folder, dtype=dtype, device=device)
    transformer, vae = pipe.transformer.eval(), pipe.vae.eval()
    for module in (transformer, vae, pipe.text_encoder):
        module.requires_grad_(False)
    transformer.vae_scale_factor = pipe.vae_scale_factor  # read by sampling.added_conditions
    image_size = transformer.config.sample_size * pipe.vae_scale_factor
    model_revision = folder_revision(folder)
    projector, adapter_config = None, None
    if adapter is not None:
        projector, adapter_config = load_adapter(adapter_folder, transformer,
                                                 pipe.text_encoder.config.d_model)
        if projector is not None:
            projector = projector.to(device).eval().requires_grad_(False)
            if dtype != torch.float32:
                projector = projector.to(dtype)
        if adapter_config.get("base_revision") not in (None, model_revision):
            log.warning("adapter %s was trained on %s at revision %s; loading it onto revision %s",
                        adapter, source, adapter_config["base_revision"], model_revision)
        model_revision = f"{model_revision}+{adapter_config['weights_sha256'][:12]}"
    max_length = T5_TOKENS[kind]
    if adapter_config:
        max_length = adapter_config.get("max_length", max_length)
    conditioner = T5Conditioner(pipe.tokenizer, pipe.text_encoder, projector, max_length)
    encoder_name = getattr(pipe.text_encoder.config, "_name_or_path", "") or "t5"
    info = pixart_info(source, kind, image_size, encoder_name, adapter_config)
    model_id = source if adapter is None else f"{source}+{adapter}"
    # The domain check fitted for this model: the adapter's (trained on its own data), else the checkpoint's.
    domain_folder = adapter_folder if adapter is not None else folder
    return LoadedModel(model_id, model_revision, transformer, vae, pipe.scheduler, conditioner, info, domain_folder)

