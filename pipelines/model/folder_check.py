"""Whether a folder holds a whole MedEdit model (assets/mededit-default's layout), read without
torch: the loader checks it before any weight is read, and the model picker before offering it."""

from pathlib import Path

from pipelines.core.errors import MedEditError
from pipelines.core.files import PICKLE_SUFFIXES
from pipelines.model.info import INFO_FILE

COMPONENTS = {"transformer": "diffusion_pytorch_model.safetensors",
              "vae": "diffusion_pytorch_model.safetensors",
              "projector": "diffusion_pytorch_model.safetensors",
              "scheduler": None}


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
