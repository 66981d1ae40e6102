"""Load a MedEdit model: the embedded default in assets/, or a folder in the same layout.

The folder is checked before any weight is read: every component present, safetensors only.
Its revision is a content hash of the weights, so exports name exactly what made them.
"""

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, PixArtTransformer2DModel

from pipelines.conditioners import EmbeddedConditioner
from pipelines.conditioning import DisentangledProjector
from pipelines.errors import MedEditError
from pipelines.model_info import INFO_FILE, ModelInfo, read_model_info
from pipelines.text_encoder import TextEncoder

EMBEDDED = "embedded"
EMBEDDED_FOLDER = Path(__file__).resolve().parent.parent / "assets" / "mededit-default"
COMPONENTS = {"transformer": "diffusion_pytorch_model.safetensors",
              "vae": "diffusion_pytorch_model.safetensors",
              "projector": "diffusion_pytorch_model.safetensors",
              "scheduler": None}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


@dataclass
class LoadedModel:
    model_id: str
    revision: str
    transformer: PixArtTransformer2DModel
    vae: AutoencoderKL
    scheduler: DPMSolverMultistepScheduler
    conditioner: EmbeddedConditioner
    info: ModelInfo

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        size = self.transformer.config.sample_size
        return (self.transformer.config.in_channels, size, size)


def default_source() -> str:
    """$MEDEDIT_MODEL's first entry (the app offers every comma-separated one), else embedded."""
    first = os.environ.get("MEDEDIT_MODEL", "").split(",")[0].strip()
    return first or EMBEDDED


def default_device() -> str:
    """$MEDEDIT_DEVICE, else the GPU when there is one (a Space with a GPU), else the CPU."""
    return os.environ.get("MEDEDIT_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")


def check_model_folder(folder: Path) -> None:
    """Every component there, in safetensors: a clear message before any weight is read."""
    if not folder.is_dir():
        raise MedEditError(f"model folder {folder} does not exist")
    missing = [INFO_FILE] if not (folder / INFO_FILE).exists() else []
    for name, weights in COMPONENTS.items():
        part = folder / name
        if not part.is_dir():
            missing.append(f"{name}/")
            continue
        config = "scheduler_config.json" if name == "scheduler" else "config.json"
        if not (part / config).exists():
            missing.append(f"{name}/{config}")
        if weights and not (part / weights).exists():
            pickles = [p.name for p in part.iterdir() if p.suffix in PICKLE_SUFFIXES]
            if pickles:
                raise MedEditError(f"{part} holds only pickle weights ({', '.join(pickles)}); "
                                   "MedEdit loads safetensors only: convert them first")
            missing.append(f"{name}/{weights}")
    if missing:
        raise MedEditError(f"{folder} is not a complete MedEdit model; missing: {', '.join(missing)}")


def weights_revision(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.safetensors")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def load_model(source: str | None = None) -> LoadedModel:
    """The embedded default (source None, "embedded" or $MEDEDIT_MODEL), a MedEdit folder, or a
    PixArt pipeline (Hub repo id or folder)."""
    source = source or default_source()
    folder = EMBEDDED_FOLDER if source == EMBEDDED else Path(source)
    if not folder.is_dir() or any((folder / f).exists() for f in ("model_index.json", "adapter_config.json")):
        # A Hub repo id, a diffusers PixArt pipeline or an adapter: the bring-your-own-model path.
        from pipelines.pixart import load_pixart_model
        # bfloat16 on a GPU: T5 overflows in float16, and float32 doubles the memory.
        device = default_device()
        return load_pixart_model(source, device=device,
                                 dtype=torch.bfloat16 if device.startswith("cuda") else torch.float32)
    check_model_folder(folder)
    info = read_model_info(folder)
    load = dict(use_safetensors=True, torch_dtype=torch.float32)  # weights are stored in float16
    transformer = PixArtTransformer2DModel.from_pretrained(folder / "transformer", **load).eval()
    vae = AutoencoderKL.from_pretrained(folder / "vae", **load).eval()
    projector = DisentangledProjector.from_pretrained(folder / "projector", **load).eval()
    scheduler = DPMSolverMultistepScheduler.from_pretrained(folder / "scheduler")
    for module in (transformer, vae, projector):
        module.requires_grad_(False)
    # The DiT and the VAE go to the GPU when there is one (a Space with a GPU); the small text
    # encoder and projector stay on the CPU and their tokens move per request.
    device = default_device()
    try:
        transformer.to(device)
    except (RuntimeError, AssertionError) as error:
        raise MedEditError(f"MEDEDIT_DEVICE={device!r} cannot be used: {error}") from None
    vae.to(device)
    conditioner = EmbeddedConditioner(TextEncoder(max_length=info.text_tokens), projector)
    model_id = "mededit-default" if source == EMBEDDED else str(folder)
    return LoadedModel(model_id, weights_revision(folder), transformer, vae, scheduler, conditioner, info)


@torch.no_grad()
def decode(model: LoadedModel, latents: torch.Tensor) -> torch.Tensor:
    """Latents [B, C, h, w] to images [B, H, W, 3] uint8.

    One latent at a time: convolution results depend on the batch size in the last bits, and the
    same request must give the same image whether decoded alone or beside others.
    """
    scaled = latents.to(model.vae.device, model.vae.dtype) / model.vae.config.scaling_factor
    images = torch.cat([model.vae.decode(z[None]).sample for z in scaled]).float().cpu()
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
