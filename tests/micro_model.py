"""A micro MedEdit model with random weights, saved in the real layout so real loading runs."""

from pathlib import Path

import torch
from diffusers import DPMSolverMultistepScheduler

from pipelines.model.info import ModelInfo, write_model_info
from pipelines.model.presets import make_projector, make_transformer, make_vae
from pipelines.training.priors import PRIOR_DIMS
from pipelines.model.sizes import NOISE_SCHEDULE


def save_micro_model(folder: Path) -> Path:
    torch.manual_seed(0)
    make_transformer("micro").save_pretrained(folder / "transformer")
    make_vae("micro").save_pretrained(folder / "vae")
    make_projector("micro", *PRIOR_DIMS).save_pretrained(folder / "projector")
    DPMSolverMultistepScheduler(**NOISE_SCHEDULE, algorithm_type="dpmsolver++").save_pretrained(
        folder / "scheduler")
    write_model_info(folder, ModelInfo.embedded_default())
    return folder
