"""Load any model by name: the embedded default, a MedEdit folder, or a PixArt checkpoint (a Hub
repo id, a diffusers folder, or a LoRA adapter naming its base model)."""

import os
from pathlib import Path

import torch

from pipelines.model.embedded import EMBEDDED, EMBEDDED_FOLDER, load_embedded
from pipelines.model.loaded import LoadedModel
from pipelines.model.offered import default_source
from pipelines.model.pixart import is_pixart_source, load_pixart_model


def default_device() -> str:
    """$MEDEDIT_DEVICE, else the GPU when there is one (a Space with a GPU), else the CPU."""
    return os.environ.get("MEDEDIT_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")


def load_model(source: str | None = None) -> LoadedModel:
    """The embedded default (source None, "embedded" or $MEDEDIT_MODEL), a MedEdit folder, or a
    PixArt pipeline (Hub repo id or folder)."""
    source = source or default_source()
    folder = EMBEDDED_FOLDER if source == EMBEDDED else Path(source)
    device = default_device()
    if is_pixart_source(folder):
        # bfloat16 on a GPU: T5 overflows in float16, and float32 doubles the memory.
        return load_pixart_model(source, device=device,
                                 dtype=torch.bfloat16 if device.startswith("cuda") else torch.float32)
    model_id = "mededit-default" if source == EMBEDDED else str(folder)
    return load_embedded(folder, model_id, device)
