"""Checkpoints of a training run through accelerate's `save_state` / `load_state`.

accelerate writes the trained tensors and the EMA with safetensors, the AdamW moments and the random
states with torch.save (read back with `weights_only`, so no code runs). On top of it each
checkpoint folder holds `mededit_state.json`: the step, the seconds trained over every call, and
a fingerprint of the settings a resume must share.

A checkpoint is written into a hidden sibling folder and renamed into place as `step-NNNNNNNNN`
only when complete, so a run killed while saving resumes from the one before; older ones are then
removed.
"""

import json
import os
import shutil
import time
from pathlib import Path

import torch

from pipelines.core.errors import MedEditError
from pipelines.core.files import write_atomic

META_FILE = "mededit_state.json"
PREFIX = "step-"
EARLIER_FORMAT = "training_state.safetensors"  # what MedEdit wrote before it used accelerate


class RunClock:
    """Seconds a training run has taken over all its calls, so a resumed run reports its whole time."""

    def __init__(self):
        self.began, self.earlier = time.time(), 0.0

    def carry_on(self, seconds: float) -> None:
        self.earlier = float(seconds)

    def seconds(self) -> float:
        return self.earlier + time.time() - self.began


class TensorView(torch.nn.Module):
    """Named tensors as one module's buffers, the very objects the models train (no copies): accelerate
    saves the view with safetensors and `load_state` fills it, and so the models, in place."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        super().__init__()
        for name, tensor in tensors.items():
            self.register_buffer(name.replace(".", "/"), tensor)  # a "." would read as a submodule


def fingerprint(trainer: str, **settings) -> str:
    """What a checkpoint of this trainer must agree with to be resumed."""
    return json.dumps({"trainer": trainer, **settings}, sort_keys=True)


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint under `folder` (one whose state file was written), or None."""
    done = [p for p in Path(folder).glob(PREFIX + "*") if (p / META_FILE).is_file()]
    return max(done, key=lambda p: p.name, default=None)


class Checkpoints:
    """Saves and restores one run's state: the trained tensors, the EMA (if any), the optimiser."""

    def __init__(self, accelerator, folder, trained: dict[str, torch.Tensor], ema=None,
                 fingerprint: str = ""):
        self.accelerator, self.folder, self.ema, self.fingerprint = accelerator, Path(folder), ema, fingerprint
        # Registered in this order, saved as model.safetensors and model_1.safetensors. In
        # "evaluation mode" accelerate leaves a view unwrapped: it is saved and loaded, never run.
        views = [TensorView(trained)]
        if ema is not None:
            views.append(TensorView({str(i): tensor for i, tensor in enumerate(ema.shadow_params)}))
        for view in views:
            accelerator.prepare_model(view, device_placement=False, evaluation_mode=True)

    def save(self, step: int, clock: RunClock) -> None:
        """Called by every process: each writes its own random states."""
        accelerator, main = self.accelerator, self.accelerator.is_main_process
        final = self.folder / f"{PREFIX}{step:09d}"
        partial = self.folder / f".{final.name}.partial"
        if main:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(partial))
        accelerator.wait_for_everyone()
        if main:
            meta = {"step": step, "seconds": clock.seconds(), "fingerprint": self.fingerprint}
            write_atomic(partial / META_FILE, json.dumps(meta).encode())
            if final.exists():  # a run that did not resume reaching a step saved before
                shutil.rmtree(final)
            os.replace(partial, final)
            for older in self.folder.glob(PREFIX + "*"):
                if older != final:
                    shutil.rmtree(older, ignore_errors=True)
        accelerator.wait_for_everyone()

    def resume(self, clock: RunClock) -> int:
        """Restore the newest checkpoint in place and return its step; 0 when there is none."""
        found = latest_checkpoint(self.folder)
        if found is None:
            if (self.folder / EARLIER_FORMAT).exists():
                raise MedEditError(f"{self.folder} holds a checkpoint in an earlier MedEdit format; "
                                   "rerun without --resume")
            return 0
        meta = json.loads((found / META_FILE).read_text())
        if meta.get("fingerprint") != self.fingerprint:
            raise MedEditError(f"the checkpoint in {found} is from a run with other settings; "
                               "rerun with its settings or without --resume")
        try:
            self.accelerator.load_state(str(found))
        except (RuntimeError, ValueError, KeyError, OSError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise MedEditError(f"the checkpoint in {found} does not fit this run ({first_line}); "
                               "rerun with its settings or without --resume") from None
        if self.ema is not None:
            self.ema.optimization_step = meta["step"]  # its decay warms up with the steps taken
        clock.carry_on(meta["seconds"])
        self.accelerator.print(f"resuming from step {meta['step']} ({found})")
        return meta["step"]
