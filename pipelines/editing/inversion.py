"""Edit-friendly inversion of an image the user brings, for DPM-Solver++ (as LEDITS++ derives it).

The image's latent x0 is noised to every step's noise level independently, x_i = alpha_i x0 +
sigma_i n_i with fresh n_i; then, under the source prompts, each solver step from the state so
far is asked to land on the next x_i, and the noise it would need is recorded:
    z_i = (x_{i+1} - mu_i) / c_i
where mu_i is the stochastic DPM-Solver++ (2M) step without noise and c_i its noise scale. The
step taken with z_i lands on x_{i+1} up to rounding, and the state it gives replaces x_{i+1}, so
errors do not add up. Sampling again from state 0 with the source prompts and the recorded z_i
repeats every step exactly (the same inputs to the same functions): the last state is x0, the
autoencoder's own round trip of the image, to float tolerance. An edit starts from the state at
its swap step and runs the tail under other prompts with the same z_i (sampling.advance, noises).
The z_i hold what the source prompts did not predict: the image's own fine detail, hairs included,
so a removal run on them leaves faint traces. An edit may draw the last steps' noise fresh instead
(`fresh`, drawn after the targets from the same seed; Edit.refresh).

The deterministic solver has no noise slot to absorb the difference; and with a final sigma of 0
the last step has none either, so the inverted run ends at sigma_min, targeted at x0 itself.
"""

import copy
from dataclasses import dataclass

import torch
from diffusers import DPMSolverMultistepScheduler

from pipelines.core.errors import MedEditError
from pipelines.model.conditioners import Branches
from pipelines.editing.sampling import Prefix, guided_noise


@dataclass
class Inversion:
    """An image inverted into the sampler's noise space: the source prompts' run, kept after every
    step (states[i]: after i steps; states[-1].latents is the clean latent, which replaying the
    steps reaches up to rounding), and the noise each step adds (noises[i], for step i)."""

    states: list[Prefix]
    noises: list[torch.Tensor]
    clean: torch.Tensor  # [B, C, h, w] the encoded image x0
    landed: torch.Tensor | None = None  # where the last step itself lands: x0 up to rounding
    fresh: list[torch.Tensor] | None = None  # a Gaussian noise per step, for steps an edit refreshes

    def tail_noises(self, refresh: int) -> list[torch.Tensor]:
        """The noise of every step, the last `refresh` of them fresh."""
        kept = max(0, self.steps - refresh)
        return self.noises[:kept] + self.fresh[kept:]

    @property
    def steps(self) -> int:
        return len(self.noises)


def inversion_scheduler(scheduler) -> DPMSolverMultistepScheduler:
    """The model's DPM-Solver++ made stochastic (a noise slot per step) and ending at sigma_min."""
    if not isinstance(scheduler, DPMSolverMultistepScheduler):
        raise MedEditError(f"editing an uploaded image needs a DPM-Solver++ scheduler; this model "
                           f"uses {type(scheduler).__name__}")
    return DPMSolverMultistepScheduler.from_config(scheduler.config, algorithm_type="sde-dpmsolver++",
                                                   final_sigmas_type="sigma_min")


def noise_scale(scheduler: DPMSolverMultistepScheduler, i: int) -> torch.Tensor:
    """c_i = sigma_t sqrt(1 - exp(-2h)): how much of its noise step i adds (the scheduler's own
    sde-dpmsolver++ formula)."""
    alpha_t, sigma_t = scheduler._sigma_to_alpha_sigma_t(scheduler.sigmas[i + 1])
    alpha_s, sigma_s = scheduler._sigma_to_alpha_sigma_t(scheduler.sigmas[i])
    h = (torch.log(alpha_t) - torch.log(sigma_t)) - (torch.log(alpha_s) - torch.log(sigma_s))
    return sigma_t * torch.sqrt(1.0 - torch.exp(-2 * h))


def noised_targets(scheduler: DPMSolverMultistepScheduler, clean: torch.Tensor,
                   generator: torch.Generator) -> list[torch.Tensor]:
    """x_i for every step i (fresh noise each, drawn on the CPU so a seed means the same everywhere),
    then x0 itself as the last step's target."""
    targets = [scheduler.add_noise(clean, gaussian(clean, generator), t.reshape(1)) for t in scheduler.timesteps]
    return targets + [clean]


def gaussian(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(like.shape, generator=generator).to(like.device, like.dtype)


def invert(transformer, scheduler, clean: torch.Tensor, steps: int, source: Branches,
           anatomy_scale: float, style_scale: float, seed: int = 0, callback=None) -> Inversion:
    """Invert the clean latents [B, C, h, w] under the source prompts' guidance (`source`: B images'
    branches), with `steps` steps of the model's scheduler made stochastic."""
    scheduler = inversion_scheduler(scheduler)
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(seed)
    targets = noised_targets(scheduler, clean, generator)
    if source.tokens.shape[0] != clean.shape[0]:
        source = source.repeat(clean.shape[0])
    latents = targets[0]
    states, noises = [Prefix(latents, copy.deepcopy(scheduler), 0)], []
    for i, t in enumerate(scheduler.timesteps):
        eps = guided_noise(transformer, scheduler.scale_model_input(latents, t), t, source,
                           anatomy_scale, style_scale)
        probe = copy.deepcopy(scheduler)  # the step without noise, on a copy: mu_i
        mu = probe.step(eps, t, latents, variance_noise=torch.zeros_like(latents), return_dict=False)[0]
        noise = (targets[i + 1] - mu) / noise_scale(scheduler, i)
        latents = scheduler.step(eps, t, latents, variance_noise=noise, return_dict=False)[0]
        states.append(Prefix(latents, copy.deepcopy(scheduler), i + 1, eps))
        noises.append(noise)
        if callback is not None:
            callback(i + 1)
    # The last step lands on x0 up to rounding; the run ends on x0 itself, so an image with nothing
    # to edit (and an edit's region blending) gives back the round trip bit for bit.
    states[-1].latents = clean
    return Inversion(states, noises, clean, latents, [gaussian(clean, generator) for _ in noises])


@torch.no_grad()
def encode(vae, images: torch.Tensor) -> torch.Tensor:
    """Images [B, H, W, 3] uint8 to latents [B, C, h, w]: the posterior mean (no sampling), scaled
    as the sampler's latents are (`loaded.decode` undoes it). One image at a time, like decode."""
    pixels = images.permute(0, 3, 1, 2).to(vae.device, vae.dtype) / 127.5 - 1.0
    scale = vae.config.scaling_factor
    return torch.cat([vae.encode(x[None]).latent_dist.mode() * scale for x in pixels])
