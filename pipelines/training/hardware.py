"""Where a trainer runs: `--device auto` takes a CUDA GPU when torch sees one, else the CPU."""

import torch

from pipelines.core.errors import MedEditError


def add_device_argument(parser) -> None:
    parser.add_argument("--device", default="auto", help="auto (a CUDA GPU when there is one), cuda or cpu")


def training_device(name: str = "auto") -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MedEditError(f"--device {name} was asked for, but torch sees no CUDA GPU; use --device cpu")
    device = torch.device(name)
    if device.type == "cuda":
        # TF32 matmuls: about 2x on Hopper, far below the noise of SGD.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def describe(device: torch.device) -> str:
    """What the model card records: the GPU's name, or the CPU threads used."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu, {torch.get_num_threads()} threads"
