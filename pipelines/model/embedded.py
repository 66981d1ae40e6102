"""The embedded default and every MedEdit model folder in its layout (assets/mededit-default).

The folder is checked before any weight is read: every component present, safetensors only.
Its revision is a content hash of the weights, so exports name exactly what made them.
"""

from pathlib import Path

import torch
from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, PixArtTransformer2DModel

from pipelines.core.errors import MedEditError
from pipelines.core.files import content_hash
from pipelines.model.conditioners import EmbeddedConditioner
from pipelines.model.folder_check import check_model_folder
from pipelines.model.info import read_model_info
from pipelines.model.loaded import LoadedModel
from pipelines.model.offered import EMBEDDED, EMBEDDED_FOLDER  # noqa: F401 (named here by callers)
from pipelines.model.projector import DisentangledProjector
from pipelines.model.text_encoder import TextEncoder


def weights_revision(folder: Path) -> str:
    # The domain check's statistics (domain/) are fitted later and judge inputs: not the model's weights.
    return content_hash(sorted(p for p in folder.rglob("*.safetensors") if "domain" not in p.relative_to(folder).parts))


def load_embedded(folder: Path, model_id: str, device: str) -> LoadedModel:
    """A MedEdit folder: the DiT and the VAE on `device`; the small text encoder and projector
    stay on the CPU and their tokens move per request."""
    check_model_folder(folder)
    info = read_model_info(folder)
    load = dict(use_safetensors=True, torch_dtype=torch.float32)  # weights are stored in float16
    transformer = PixArtTransformer2DModel.from_pretrained(folder / "transformer", **load).eval()
    vae = AutoencoderKL.from_pretrained(folder / "vae", **load).eval()
    projector = DisentangledProjector.from_pretrained(folder / "projector", **load).eval()
    scheduler = DPMSolverMultistepScheduler.from_pretrained(folder / "scheduler")
    for module in (transformer, vae, projector):
        module.requires_grad_(False)
    try:
        transformer.to(device)
    except (RuntimeError, AssertionError) as error:
        raise MedEditError(f"MEDEDIT_DEVICE={device!r} cannot be used: {error}") from None
    vae.to(device)
    conditioner = EmbeddedConditioner(TextEncoder(max_length=info.text_tokens), projector)
    return LoadedModel(model_id, weights_revision(folder), transformer, vae, scheduler, conditioner, info, folder)
