"""Named sizes of the embedded model, like DiT's DiT_S_2 ... DiT_XL_2.

`micro` is for unit tests (random weights, milliseconds a step); `cpu` is what the shipped weights
use, trainable on 2 cores within about an hour; `gpu` is the 20M-parameter DiT that one H100 trains
in minutes. All work in the latent space of a small f4 AutoencoderKL: 64 px images -> 16x16x8.
"""

from diffusers import AutoencoderKL, PixArtTransformer2DModel

from pipelines.core.errors import MedEditError
from pipelines.model.projector import DisentangledProjector
from pipelines.model.sizes import DIT_PRESETS, IMAGE_SIZE, LATENT_CHANNELS, TEXT_DIM, TOKEN_GRID, VAE_PRESETS


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
    """A DiT on an 8x8 token grid whatever the latent size (16x16 at 64 px, 32x32 at 256 px), so its
    speed and its trained blocks carry over between sizes."""
    config = _check(preset, DIT_PRESETS, "dit")
    width = config["num_attention_heads"] * config["attention_head_dim"]
    # out_channels = in_channels: epsilon only, no learned variance (DPM-Solver ignores it).
    return PixArtTransformer2DModel(sample_size=latent_size, patch_size=max(1, latent_size // TOKEN_GRID),
                                    in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS, cross_attention_dim=width,
                                    caption_channels=width, norm_type="ada_norm_single",
                                    use_additional_conditions=False, **config)


def make_projector(preset: str = "cpu", anatomy_prior_dim: int = 8,
                   style_prior_dim: int = 8) -> DisentangledProjector:
    config = _check(preset, DIT_PRESETS, "dit")
    width = config["num_attention_heads"] * config["attention_head_dim"]
    return DisentangledProjector(text_dim=TEXT_DIM, dim=width, anatomy_prior_dim=anatomy_prior_dim,
                                 style_prior_dim=style_prior_dim)
