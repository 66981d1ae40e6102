"""Med-Art's hybrid-level fine-tuning (HLDF): a colour loss on fully sampled images.

Next to the latent noise MSE, images are sampled from noise with a short DPM-Solver++(2M) sampler
written here as a plain differentiable function (diffusers' schedulers keep state between steps and
are not meant for autograd), decoded by the VAE, and compared with the real batch per colour
channel: L = sum_c (mean gap)^2 + (std gap)^2. Each transformer call and the decode are wrapped in
torch.utils.checkpoint, so memory holds one step's activations at a time while the gradient flows
through every step back to the LoRA weights.
"""

import torch
from torch.utils.checkpoint import checkpoint

from pipelines.editing.sampling import Branches, guided_noise


def colour_loss(generated: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """sum over colour channels of (mean gap)^2 + (std gap)^2; images [B, 3, H, W], same range."""
    dims = (0, 2, 3)
    g, r = generated.float(), real.float()
    mean_gap = g.mean(dims) - r.mean(dims)
    std_gap = g.std(dims) - r.std(dims)
    return (mean_gap.square() + std_gap.square()).sum()


def sampling_timesteps(num_train_timesteps: int, steps: int) -> list[int]:
    """`steps` timesteps from T-1 down towards 0, evenly spaced (DPM-Solver's 'linspace')."""
    points = torch.linspace(num_train_timesteps - 1, 0, steps + 1)[:-1]
    return [int(t) for t in points.round()]


def dpm_solver_sample(transformer, noise: torch.Tensor, branches: Branches,
                      alphas_cumprod: torch.Tensor, steps: int = 4, anatomy_scale: float = 4.5,
                      style_scale: float = 4.5, use_checkpoint: bool = True) -> torch.Tensor:
    """DPM-Solver++(2M), data prediction, from `noise` to clean latents; differentiable.

    x_{i+1} = (sigma_{i+1}/sigma_i) x_i - alpha_{i+1} (e^{-h} - 1) D_i, with D_i the first-order
    (first and last step) or second-order multistep combination of the x0 predictions.
    """
    timesteps = sampling_timesteps(len(alphas_cumprod), steps)
    a_bar = alphas_cumprod.to(device=noise.device, dtype=torch.float64)

    def coefficients(t):  # alpha_t, sigma_t, lambda_t; t = None is the clean end
        if t is None:
            return 1.0, 0.0, float("inf")
        alpha, sigma = a_bar[t].sqrt().item(), (1 - a_bar[t]).sqrt().item()
        return alpha, sigma, float(torch.log(a_bar[t].sqrt() / (1 - a_bar[t]).sqrt()))

    def eps_of(x, t):
        return guided_noise(transformer, x, t, branches, anatomy_scale, style_scale)

    x, previous_x0, previous_h = noise, None, None
    for i, t in enumerate(timesteps):
        t_next = timesteps[i + 1] if i + 1 < len(timesteps) else None
        alpha, sigma, lam = coefficients(t)
        alpha_next, sigma_next, lam_next = coefficients(t_next)
        if use_checkpoint and torch.is_grad_enabled():
            eps = checkpoint(eps_of, x, t, use_reentrant=False)
        else:
            eps = eps_of(x, t)
        x0 = (x - sigma * eps) / alpha  # [B, C, h, w]
        if t_next is None:
            return x0  # the last step lands on sigma = 0: x is its data prediction
        h = lam_next - lam
        d = x0
        if previous_x0 is not None:
            r = previous_h / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * previous_x0
        x = (sigma_next / sigma) * x - alpha_next * torch.expm1(torch.tensor(-h)).item() * d
        previous_x0, previous_h = x0, h
    return x


def decode_differentiable(vae, latents: torch.Tensor, use_checkpoint: bool = True) -> torch.Tensor:
    """Latents -> images [B, 3, H, W] in [-1, 1], keeping the graph to the latents."""
    def run(z):
        return vae.decode(z / vae.config.scaling_factor).sample
    if use_checkpoint and torch.is_grad_enabled():
        return checkpoint(run, latents, use_reentrant=False)
    return run(latents)


def hldf_loss(transformer, vae, branches: Branches, real_images: torch.Tensor,
              alphas_cumprod: torch.Tensor, generator: torch.Generator, steps: int = 4,
              anatomy_scale: float = 4.5, style_scale: float = 4.5) -> torch.Tensor:
    """Sample one image per branch set from fresh noise, decode, compare colours with `real_images`
    ([B, 3, H, W] in [-1, 1])."""
    b = branches.tokens.shape[0]
    size = transformer.config.sample_size
    shape = (b, transformer.config.in_channels, size, size)
    noise = torch.randn(shape, generator=generator).to(real_images.device, real_images.dtype)
    latents = dpm_solver_sample(transformer, noise, branches, alphas_cumprod, steps,
                                anatomy_scale, style_scale)
    images = decode_differentiable(vae, latents.to(next(vae.parameters()).dtype))
    return colour_loss(images, real_images)
