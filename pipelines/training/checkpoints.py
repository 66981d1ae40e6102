"""Resumable training state in safetensors + JSON: weights, AdamW moments, step, RNG and time. No pickle."""

import json
import os
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

STATE_FILE = "training_state.safetensors"
META_FILE = "training_state.json"


class RunClock:
    """Seconds a training run has taken over all its calls, so a resumed run reports its whole time."""

    def __init__(self):
        self.began, self.earlier = time.time(), 0.0

    def carry_on(self, meta: dict) -> None:
        self.earlier = float(meta["extra"].get("seconds", 0.0))

    def seconds(self) -> float:
        return self.earlier + time.time() - self.began


def save_training_state(folder: Path, modules: dict, optimizer: torch.optim.Optimizer, step: int,
                        clock: RunClock, extra: dict | None = None) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{name}.{key}": value.detach().cpu().contiguous()
               for name, module in modules.items() for key, value in module.state_dict().items()}
    opt = optimizer.state_dict()
    for index, state in opt["state"].items():
        for key, value in state.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    tmp = folder / (STATE_FILE + ".tmp")
    save_file(tensors, tmp)
    meta = {"step": step, "param_groups": opt["param_groups"],
            "extra": {**(extra or {}), "seconds": clock.seconds()}}
    (folder / (META_FILE + ".tmp")).write_text(json.dumps(meta))
    # Rename last so an interrupted save never leaves a half-written state behind.
    os.replace(tmp, folder / STATE_FILE)
    os.replace(folder / (META_FILE + ".tmp"), folder / META_FILE)


def load_training_state(folder: Path, modules: dict, optimizer: torch.optim.Optimizer,
                        clock: RunClock) -> dict | None:
    """Restore in place, the clock too, and return the saved metadata, or None when there is nothing to resume."""
    folder = Path(folder)
    if not (folder / STATE_FILE).exists():
        return None
    tensors = load_file(folder / STATE_FILE)
    meta = json.loads((folder / META_FILE).read_text())
    for name, module in modules.items():
        prefix = f"model.{name}."
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, field = key.split(".", 2)
            state.setdefault(int(index), {})[field] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    clock.carry_on(meta)
    return meta
