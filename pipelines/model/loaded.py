"""A loaded model, whatever its source: the parts the pipeline drives, and decoding its latents."""

from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, PixArtTransformer2DModel

from pipelines.model.info import ModelInfo


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

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        size = self.transformer.config.sample_size
        return (self.transformer.config.in_channels, size, size)


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
