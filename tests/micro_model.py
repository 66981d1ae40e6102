"""A micro MedEdit model with random weights, saved in the real layout so real loading runs.

At 64 px it has the shipped model's shapes (an f4 VAE, 16x16 latents, patch 2); at 256 px the
256-px model's (an f8 VAE, 32x32 latents, patch 4): the same 8x8 token grid either way.
"""

import dataclasses
import shutil
from pathlib import Path

import torch
from diffusers import DPMSolverMultistepScheduler

from pipelines.model.info import ModelInfo, read_model_info, write_model_info
from pipelines.model.presets import make_projector, make_transformer, make_vae
from pipelines.training.priors import PRIOR_DIMS
from pipelines.model.sizes import NOISE_SCHEDULE, VAE_PRESETS

VAE_BY_SIZE = {64: "micro", 256: "micro-f8"}  # f4 for 64 px, f8 for 256 px, as the real models


def save_micro_model(folder: Path, image_size: int = 64) -> Path:
    vae_preset = VAE_BY_SIZE[image_size]
    downscale = 2 ** (len(VAE_PRESETS[vae_preset]["block_out_channels"]) - 1)
    torch.manual_seed(0)
    make_transformer("micro", image_size // downscale).save_pretrained(folder / "transformer")
    make_vae(vae_preset, image_size).save_pretrained(folder / "vae")
    make_projector("micro", *PRIOR_DIMS).save_pretrained(folder / "projector")
    DPMSolverMultistepScheduler(**NOISE_SCHEDULE, algorithm_type="dpmsolver++").save_pretrained(
        folder / "scheduler")
    info = ModelInfo.embedded_default(image_size=image_size)
    write_model_info(folder, info if image_size == 64 else dataclasses.replace(info, name=f"micro-{image_size}"))
    return folder


def copy_with_steps(folder: Path, copy: Path, steps: int) -> Path:
    """A copy of model `folder` whose default sampling takes `steps` steps (eval and bench stay quick)."""
    shutil.copytree(folder, copy)
    info = read_model_info(copy)
    write_model_info(copy, dataclasses.replace(info, defaults={**info.defaults, "steps": steps}))
    return copy
