"""Where a trainer runs: an accelerate Accelerator on one process (`--device auto` takes a CUDA GPU
when torch sees one, else the CPU) or on several under `accelerate launch`."""

import os

import torch
from accelerate import Accelerator

from pipelines.core.errors import MedEditError
from pipelines.training.options import DEVICES


def check_device(name: str) -> None:
    if name not in DEVICES:
        raise MedEditError(f"--device {name}: choose one of {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise MedEditError("--device cuda was asked for, but torch sees no CUDA GPU; use --device cpu")


def make_accelerator(device: str = "auto", mixed_precision: str = "no"):
    check_device(device)
    # Several processes on a machine without CUDA (tests, CPU clusters) talk over gloo on the CPU.
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    cpu = device == "cpu" or (several and not torch.cuda.is_available())
    accelerator = Accelerator(cpu=cpu, mixed_precision=mixed_precision)
    if accelerator.device.type == "cuda":
        # TF32 matmuls: about 2x on Hopper, far below the noise of SGD.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return accelerator


def describe(accelerator) -> str:
    """What the model card records: the GPU's name, or the CPU threads used; and the processes."""
    device = accelerator.device
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"cpu, {torch.get_num_threads()} threads"
    return where if accelerator.num_processes == 1 else f"{accelerator.num_processes} processes, {where}"
