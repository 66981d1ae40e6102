"""The training loop every trainer runs: seeded draws, a learning-rate schedule, one AdamW step with
the gradients averaged over processes, an EMA (diffusers' EMAModel), checkpoints and resume through
accelerate, and an optional time limit.

A trainer hands over its loss as `step_loss(step, generator) -> (loss, logs)`. Every random draw of
a step comes from `generator`, seeded by (seed, process, step) through core.limits.step_seed: a
resumed run draws exactly what an uninterrupted one would, and each process its own batches.

The trained tensors are not wrapped in DistributedDataParallel: the trainers call methods other than
`forward` (the VAE's encode and decode, the projector's branches, a differentiable sampler), which
DDP would not see. Every process starts from the main process's weights instead, and the gradients
are averaged in one all-reduce per step, so all processes hold the same weights throughout.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from accelerate.utils import broadcast, broadcast_object_list
from diffusers.training_utils import EMAModel
from tqdm import tqdm

from pipelines.core.limits import step_seed
from pipelines.training.checkpoints import Checkpoints, RunClock
from pipelines.training.curve import LearningCurve


@dataclass
class LoopSettings:
    name: str  # "vae", "dit", ...: the progress bar's label
    steps: int
    seed: int
    learning_rate: Callable[[int], float]  # the rate of each step
    checkpoints: Path  # folder of the run's checkpoints
    checkpoint_every: int
    resume: bool = False
    fingerprint: str = ""  # what a checkpoint must carry to be resumed
    weight_decay: float = 0.0
    clip_norm: float | None = None
    ema_decay: float | None = None  # None: no EMA
    time_limit: float | None = None  # seconds of training over every call; None: no limit
    # Layers a warm start made anew (training/warm_start.py): their own rate, and steps at the start
    # in which they alone learn, so the trained rest is not pulled around by their first errors.
    new_layers: Callable[[str], bool] | None = None  # by trained-tensor name
    new_layers_rate_scale: float = 1.0
    new_layers_alone: int = 0


@dataclass
class LoopResult:
    steps: int  # steps done in all: fewer than asked when the time limit ended the run
    clock: RunClock  # the run's training time over every call
    parameters: list[torch.Tensor]  # what was trained
    ema: EMAModel | None

    def apply_ema(self) -> None:
        """Put the EMA weights into the trained parameters (for saving, once the run is over)."""
        self.ema.copy_to(self.parameters)


def step_generator(seed: int, step: int, process: int = 0) -> torch.Generator:
    """On the CPU, so a step draws the same numbers on any device."""
    return torch.Generator().manual_seed(step_seed(seed, step, process))


def trained_tensors(modules: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of the modules, by name: what a checkpoint must restore."""
    return {f"{name}.{key}": tensor for name, module in modules.items()
            for key, tensor in module.state_dict(keep_vars=True).items()}


def same_start(accelerator, parameters: list[torch.Tensor]) -> None:
    """Every process starts from the main process's weights."""
    if accelerator.num_processes == 1:
        return
    flat = broadcast(torch.cat([p.detach().flatten() for p in parameters]).contiguous(), from_process=0)
    with torch.no_grad():
        for p, value in zip(parameters, flat.split([p.numel() for p in parameters])):
            p.copy_(value.view_as(p))


def average_gradients(accelerator, parameters: list[torch.Tensor]) -> None:
    """Mean of every process's gradients, in one all-reduce."""
    if accelerator.num_processes == 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    flat = accelerator.reduce(torch.cat([g.flatten() for g in grads]), reduction="mean")
    for p, g in zip(parameters, flat.split([g.numel() for g in grads])):
        p.grad = g.view_as(p).clone()


def agreed(accelerator, flag: bool) -> bool:
    """The main process's answer on every process (clocks differ; all must stop at the same step)."""
    if accelerator.num_processes == 1:
        return flag
    return bool(broadcast_object_list([flag], from_process=0)[0])


def learning_groups(trained: dict[str, torch.Tensor], settings: LoopSettings) -> list[dict]:
    """AdamW's parameter groups: what requires a gradient, the warm start's new layers apart."""
    names = [n for n, t in trained.items() if isinstance(t, torch.nn.Parameter) and t.requires_grad]
    is_new = settings.new_layers or (lambda name: False)
    groups = [{"params": [trained[n] for n in names if not is_new(n)], "new": False},
              {"params": [trained[n] for n in names if is_new(n)], "new": True}]
    return [group for group in groups if group["params"]]


def group_rate(group: dict, step: int, settings: LoopSettings) -> float:
    """A group's learning rate as a multiple of the schedule's."""
    if group.get("new", False):  # a checkpoint from before the split restores groups without the key
        return settings.new_layers_rate_scale
    return 0.0 if step < settings.new_layers_alone else 1.0


def run_loop(accelerator, trained: dict[str, torch.Tensor], settings: LoopSettings,
             step_loss: Callable[[int, torch.Generator], tuple[torch.Tensor, dict]],
             clock: RunClock | None = None) -> LoopResult:
    """Train the parameters among `trained` (those that require a gradient) from the last checkpoint
    (with `settings.resume`) or from where they are, to `settings.steps`. The run's time counts from
    `clock`'s start when one is given (a trainer that counts its data too), else from here."""
    groups = learning_groups(trained, settings)
    parameters = [p for group in groups for p in group["params"]]
    same_start(accelerator, parameters)
    optimizer = accelerator.prepare(torch.optim.AdamW(groups, lr=settings.learning_rate(0),
                                                      weight_decay=settings.weight_decay))
    ema = None if settings.ema_decay is None else EMAModel(parameters, decay=settings.ema_decay, foreach=True)
    checkpoints = Checkpoints(accelerator, settings.checkpoints, trained, ema, settings.fingerprint)
    clock = clock or RunClock()
    start = checkpoints.resume(clock) if settings.resume else 0
    curve = LearningCurve(settings.checkpoints, start) if accelerator.is_main_process else None
    bar = tqdm(range(start, settings.steps), desc=f"train {settings.name}", initial=start,
               total=settings.steps, disable=not accelerator.is_local_main_process)
    done = start
    for step in bar:
        generator = step_generator(settings.seed, step, accelerator.process_index)
        for group in optimizer.param_groups:
            group["lr"] = settings.learning_rate(step) * group_rate(group, step, settings)
        loss, logs = step_loss(step, generator)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        average_gradients(accelerator, parameters)
        if settings.clip_norm is not None:
            accelerator.clip_grad_norm_(parameters, settings.clip_norm)
        optimizer.step()
        if ema is not None:
            ema.step(parameters)
        bar.set_postfix({k: f"{v:.4f}" for k, v in {"loss": loss.item(), **logs}.items()})
        done = step + 1
        if curve is not None:
            curve.add(done, loss.item(), clock.seconds())
        out_of_time = settings.time_limit is not None and agreed(accelerator, clock.seconds() >= settings.time_limit)
        if done % settings.checkpoint_every == 0 or done == settings.steps or out_of_time:
            checkpoints.save(done, clock)
        if out_of_time:
            break
    return LoopResult(done, clock, parameters, ema)
