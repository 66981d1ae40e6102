"""The sampling loop: two-scale guidance in one batched forward, a prompt swap at a step, prefixes.

Guidance composes the anatomy and style channels like InstructPix2Pix's two scales:
    eps = eps(0,0) + w_a [eps(a,0) - eps(0,0)] + w_s [eps(a,s) - eps(a,0)]
`Branches` holds the three cross-attention inputs for each image of a batch. The neutral run is
kept step by step (`trajectory`), so every edit branches off it at its swap step (`edit_tail`) and
a slider move recomputes only a tail. A local edit keeps the neutral latents outside the region
the edited prompt acts on (`edit_mask`).
"""

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pipelines.model.conditioners import Branches


@dataclass
class Prefix:
    """The state after the first `step` steps: latents and the scheduler's own history."""

    latents: torch.Tensor  # [1, C, h, w]
    scheduler: object  # a deep copy: multistep solvers keep past outputs
    step: int
    eps: torch.Tensor | None = None  # the guided noise prediction of the step that led here


def added_conditions(transformer, latents: torch.Tensor) -> dict | None:
    """PixArt's micro-conditions (image size in pixels, aspect ratio) for transformers that read
    them (PixArt-alpha 1024: `use_additional_conditions`); None for the others."""
    if not getattr(transformer, "use_additional_conditions", False):
        return None
    scale = getattr(transformer, "vae_scale_factor", 8)  # set by pipelines.model.pixart; 8 for PixArt
    b, height, width = latents.shape[0], latents.shape[-2] * scale, latents.shape[-1] * scale
    dtype, device = latents.dtype, latents.device
    return {"resolution": torch.tensor([[height, width]], dtype=dtype, device=device).repeat(b, 1),
            "aspect_ratio": torch.tensor([[height / width]], dtype=dtype, device=device).repeat(b, 1)}


def guidance_branches(anatomy_scale: float, style_scale: float) -> list[int]:
    """Which of the three branches (null, anatomy, both) guidance runs. With equal scales eps(a,0)
    cancels out (eps = eps(0,0) + w [eps(a,s) - eps(0,0)]), so only two are run: a third less
    work for the same result."""
    return [0, 2] if anatomy_scale == style_scale else [0, 1, 2]


# Images per transformer forward: a series' step of 64 frames x 3 branches in one forward held the
# cores for 4-5 s on one loaded core, and nothing else could run meanwhile; in pieces of 24 (8 frames) a shared
# device (app/device.py) can change hands between them. Each image's result is the same bits.
FORWARD_IMAGES = 24


def guided_noise(transformer, latents, t, branches: Branches, anatomy_scale, style_scale, between=None):
    """Epsilon with two-scale guidance, all branches (guidance_branches) in one batch, run in
    forwards of at most FORWARD_IMAGES images; `between()` is called between two forwards."""
    b = latents.shape[0]
    picked = guidance_branches(anatomy_scale, style_scale)
    n = len(picked)
    tokens = branches.tokens[:, picked].flatten(0, 1)  # [nB, L, D]
    mask = branches.mask[:, picked].flatten(0, 1).to(latents.device)  # [nB, L]
    x = latents.repeat_interleave(n, dim=0)  # [nB, C, h, w]
    pieces = []
    for start in range(0, n * b, FORWARD_IMAGES):
        if start and between is not None:
            between()
        part = slice(start, start + FORWARD_IMAGES)
        piece = x[part]
        timestep = torch.full((piece.shape[0],), int(t), dtype=torch.long, device=x.device)
        pieces.append(transformer(piece, encoder_hidden_states=tokens[part].to(x.device, x.dtype),
                                  encoder_attention_mask=mask[part], timestep=timestep,
                                  added_cond_kwargs=added_conditions(transformer, piece)).sample)
    eps = torch.cat(pieces) if len(pieces) > 1 else pieces[0]
    eps = eps[:, : latents.shape[1]].view(b, n, *latents.shape[1:])  # drop a learned variance
    if n == 2:
        e_null, e_full = eps.unbind(1)
        return e_null + style_scale * (e_full - e_null)
    e_null, e_anatomy, e_full = eps.unbind(1)
    return e_null + anatomy_scale * (e_anatomy - e_null) + style_scale * (e_full - e_anatomy)


def start(scheduler, steps: int, noise: torch.Tensor) -> Prefix:
    """Step 0: a fresh scheduler set to `steps` and the initial noise scaled for it."""
    scheduler = copy.deepcopy(scheduler)
    scheduler.set_timesteps(steps)
    return Prefix(noise * scheduler.init_noise_sigma, scheduler, 0)


@dataclass
class Keep:
    """A local edit: after each step, outside `mask` the latents are the neutral run's."""

    mask: torch.Tensor  # [B or 1, 1, h, w]: 1 where the edit may change the image
    neutral: list[torch.Tensor]  # the neutral latents after each step (index 0: the start)


def advance(transformer, prefix: Prefix, until: int, branches: Branches, anatomy_scale: float,
            style_scale: float, callback=None, keep: Keep | None = None,
            first_eps: torch.Tensor | None = None, noises: list[torch.Tensor] | None = None,
            predict=None) -> Prefix:
    """Run steps [prefix.step, until) under one conditioning; the input prefix is left untouched.
    `first_eps`: the first step's guided noise prediction, when the caller already made it.
    `noises`: the noise each step of a stochastic solver adds (an inverted image's, by step).
    `predict(model_input, t, between)`: the noise prediction, when it is not one two-scale guidance
    (`between()` to be called between its forwards, as guided_noise does)."""
    scheduler = copy.deepcopy(prefix.scheduler)
    latents, eps = prefix.latents, prefix.eps
    if branches.tokens.shape[0] != latents.shape[0]:
        latents = latents.expand(branches.tokens.shape[0], -1, -1, -1).contiguous()
    for i in range(prefix.step, until):
        t = scheduler.timesteps[i]
        if i == prefix.step and first_eps is not None:
            eps = first_eps
        else:
            model_input = scheduler.scale_model_input(latents, t)
            # Between the pieces of a large batch, the callback again with the steps done so far.
            between = None if callback is None else (lambda done=i: callback(done))
            eps = (guided_noise(transformer, model_input, t, branches, anatomy_scale, style_scale, between)
                   if predict is None else predict(model_input, t, between))
        noise = None if noises is None else noises[i]
        latents = scheduler.step(eps, t, latents, variance_noise=noise, return_dict=False)[0]
        if keep is not None:
            latents = torch.lerp(keep.neutral[i + 1], latents, keep.mask)
        if callback is not None:
            callback(i + 1)
    return Prefix(latents, scheduler, until, eps)


def trajectory(transformer, scheduler, steps: int, noise: torch.Tensor, branches: Branches,
               anatomy_scale: float, style_scale: float, callback=None) -> list[Prefix]:
    """The whole run under one conditioning, kept after every step: entry i is the state after
    i steps, so an edit can branch off at any swap step without rerunning the prefix."""
    states = [start(scheduler, steps, noise)]
    for i in range(steps):
        states.append(advance(transformer, states[-1], i + 1, branches, anatomy_scale, style_scale, callback))
    return states


def edit_mask(transformer, prefix: Prefix, neutral: Branches, edited: Branches, anatomy_scale: float,
              style_scale: float, locality: float,
              neutral_eps: torch.Tensor | None = None, between=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Where an edit acts, after DiffEdit: at the swap step, the latent pixels where the edited
    prompts' guided noise prediction differs from the neutral one's by more than `locality` of its
    largest difference (3x3 smoothed), grown by one pixel so the seam falls outside the change.
    `neutral_eps`: the neutral prediction there, when the neutral run kept it.
    Returns the [B, 1, h, w] mask of 0/1 and the edited prediction [B, C, h, w], which is the
    edit's first step's own, so the tail need not make it again."""
    t = prefix.scheduler.timesteps[prefix.step]
    x = prefix.scheduler.scale_model_input(prefix.latents, t)
    b = max(x.shape[0], neutral.tokens.shape[0], edited.tokens.shape[0])
    x = x.expand(b, -1, -1, -1)
    edited_eps = guided_noise(transformer, x, t, edited.repeat(b), anatomy_scale, style_scale, between)
    if neutral_eps is None:
        if between is not None:
            between()
        neutral_eps = guided_noise(transformer, x, t, neutral.repeat(b), anatomy_scale, style_scale, between)
    return change_mask(edited_eps - neutral_eps, locality), edited_eps


def change_mask(difference: torch.Tensor, locality: float) -> torch.Tensor:
    """[B, 1, h, w] 0/1: where |difference| [B, C, h, w] (channel mean, 3x3 smoothed) is above
    `locality` of its largest value, grown by one pixel."""
    change = F.avg_pool2d(difference.abs().mean(1, keepdim=True), 3, 1, 1, count_include_pad=False)
    change = change / change.amax((2, 3), keepdim=True).clamp_min(1e-12)
    return F.max_pool2d((change > locality).to(difference.dtype), 3, 1, 1)


def edit_tail(transformer, run: list[Prefix], swap: int, neutral: Branches, edited: Branches,
              anatomy_scale: float, style_scale: float, locality: float = 0.0, callback=None,
              frames: Branches | None = None) -> Prefix:
    """An edit: the neutral run's state at step `swap`, finished under the edited prompts (or under
    `frames`, a series' in-between prompts); with `locality` > 0 only inside the edit's
    `edit_mask`, the neutral run's latents elsewhere."""
    prefix, steps = run[swap], len(run) - 1
    keep, first_eps = None, None
    if locality > 0 and swap < steps:
        # The neutral run made its prediction at the swap step already (kept on the next state).
        mask, edited_eps = edit_mask(transformer, prefix, neutral, edited, anatomy_scale, style_scale,
                                     locality, run[swap + 1].eps, None if callback is None else lambda: callback(swap))
        keep = Keep(mask, [state.latents for state in run])
        if frames is None:
            first_eps = edited_eps
    return advance(transformer, prefix, steps, edited if frames is None else frames,
                   anatomy_scale, style_scale, callback, keep, first_eps)
