"""Named sizes of the embedded model, like DiT's DiT_S_2 ... DiT_XL_2.

`micro` is for unit tests (random weights, milliseconds a step); `cpu` is what the shipped weights
use, trainable on 2 cores within about an hour; `gpu` is the 20M-parameter DiT that one H100 trains
in minutes. All work in the latent space of a small f4 AutoencoderKL: 64 px images -> 16x16x8.
"""

from diffusers import AutoencoderKL, PixArtTransformer2DModel

from pipelines.model.projector import DisentangledProjector
from pipelines.core.errors import MedEditError

IMAGE_SIZE = 64
# 8 latent channels at f4 (16x16x8): 4 channels lost thin strokes (hair, ruler ticks, ink, leads).
LATENT_CHANNELS = 8
TEXT_DIM = 384  # all-MiniLM-L6-v2
# Stable Diffusion's betas: alpha_bar ends near 5e-3, unlike squaredcos_cap_v2's 1e-8, which
# turns DPM-Solver++'s first x0 estimate into noise (DESIGN.md, traps found by measuring).
NOISE_SCHEDULE = dict(num_train_timesteps=1000, beta_schedule="scaled_linear",
                      beta_start=0.00085, beta_end=0.012)

VAE_PRESETS = {
    "micro": dict(block_out_channels=(8, 16, 16), layers_per_block=1, norm_num_groups=8),
    "cpu": dict(block_out_channels=(32, 64, 128), layers_per_block=1, norm_num_groups=16),
}

DIT_PRESETS = {
    "micro": dict(num_layers=2, num_attention_heads=2, attention_head_dim=16),
    "cpu": dict(num_layers=6, num_attention_heads=6, attention_head_dim=32),
    "gpu": dict(num_layers=8, num_attention_heads=6, attention_head_dim=64),
}


def _check(preset, table, what):
    if preset not in table:
        raise MedEditError(f"unknown {what} preset {preset!r}; choose one of: {', '.join(table)}")
    return table[preset]


def make_vae(preset: str = "cpu", image_size: int = IMAGE_SIZE) -> AutoencoderKL:
    config = _check(preset, VAE_PRESETS, "vae")
    blocks = len(config["block_out_channels"])
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=LATENT_CHANNELS, sample_size=image_size,
                         down_block_types=("DownEncoderBlock2D",) * blocks,
                         up_block_types=("UpDecoderBlock2D",) * blocks, **config)


def make_transformer(preset: str = "cpu", latent_size: int = IMAGE_SIZE // 4) -> PixArtTransformer2DModel:
    config = _check(preset, DIT_PRESETS, "dit")
    width = config["num_attention_heads"] * config["attention_head_dim"]
    # out_channels = in_channels: epsilon only, no learned variance (DPM-Solver ignores it).
    return PixArtTransformer2DModel(sample_size=latent_size, patch_size=2,
                                    in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS, cross_attention_dim=width,
                                    caption_channels=width, norm_type="ada_norm_single",
                                    use_additional_conditions=False, **config)


def make_projector(preset: str = "cpu", anatomy_prior_dim: int = 8,
                   style_prior_dim: int = 8) -> DisentangledProjector:
    config = _check(preset, DIT_PRESETS, "dit")
    width = config["num_attention_heads"] * config["attention_head_dim"]
    return DisentangledProjector(text_dim=TEXT_DIM, dim=width, anatomy_prior_dim=anatomy_prior_dim,
                                 style_prior_dim=style_prior_dim)
