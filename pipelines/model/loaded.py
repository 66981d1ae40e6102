"""A loaded model, whatever its source: the parts the pipeline drives, and decoding its latents."""

from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, PixArtTransformer2DModel

from pipelines.core.errors import MedEditError
from pipelines.model.info import INFO_FILE, ModelInfo


@dataclass
class LoadedModel:
    model_id: str
    revision: str
    transformer: PixArtTransformer2DModel
    vae: AutoencoderKL
    scheduler: DPMSolverMultistepScheduler
    conditioner: object  # EmbeddedConditioner or T5Conditioner: encode(channel, prompt)
    info: ModelInfo
    domain_folder: Path | None = None  # where its domain check's statistics live (evaluation/domain.py)

    def __post_init__(self):
        # One resolution for everything (generation, uploads, masks, exports, evaluation): the
        # weights', which info.image_size must state (mededit.json is read before torch loads).
        if self.info.image_size != self.image_size:
            raise MedEditError(f"{self.model_id}: its {INFO_FILE} says {self.info.image_size} px, but its "
                               f"weights make {self.image_size} px images ({self.latent_shape[1]}x"
                               f"{self.latent_shape[2]} latents, an f{self.vae_downscale} autoencoder)")

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        size = self.transformer.config.sample_size
        return (self.transformer.config.in_channels, size, size)

    @property
    def vae_downscale(self) -> int:
        """Pixels per latent pixel: each down block but the last halves the image (diffusers' rule)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def image_size(self) -> int:
        """The side of every image the model makes and edits, in pixels."""
        return self.transformer.config.sample_size * self.vae_downscale


@torch.no_grad()
def decode(model: LoadedModel, latents: torch.Tensor, callback=None) -> torch.Tensor:
    """Latents [B, C, h, w] to images [B, H, W, 3] uint8; `callback(done, total)` after each latent.

    One latent at a time: convolution results depend on the batch size in the last bits, and the
    same request must give the same image whether decoded alone or beside others. The callback
    takes two arguments where a denoising step's takes one (the pipeline passes the same one down),
    so a server can stop a long series, or let another request go first, between its decodes.
    """
    scaled = latents.to(model.vae.device, model.vae.dtype) / model.vae.config.scaling_factor
    decoded = []
    for z in scaled:
        decoded.append(model.vae.decode(z[None]).sample)
        if callback is not None:
            callback(len(decoded), len(scaled))
    images = torch.cat(decoded).float().cpu()
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
