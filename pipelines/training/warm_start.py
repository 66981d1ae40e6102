"""A trained DiT carried to a larger patch (PixArt-Sigma's adaptation to a new autoencoder).

The 256-px model keeps the 64-px model's 8x8 token grid: its f8 latents are 32x32 where the f4
ones were 16x16, so the patch grows from 2 to 4 and nothing else changes shape. Every transformer
block, the timestep and caption layers keep their weights; the sin-cos positions are the same
(they depend on the grid, not on the patch). Only the two layers that touch the latent grow:

- the patch embedding: each tap of the k x k kernel is spread over an (s x s) block, divided by
  s*s, so a latent upsampled s times (nearest) embeds exactly as the original did;
- the output layer: diffusers unpatchifies output row (p*P + q)*C + c to sub-pixel (p, q) and
  channel c, so each old row is repeated for the s*s new sub-pixels it covers.

Together: widened(upsampled(x)) == upsampled(original(x)) (tests/test_warm_start.py). The new
latent space is another autoencoder's, so these two layers still have to learn it: they are what
`train dit --new-layers-lr-scale` speeds up.
"""

import torch
from diffusers import PixArtTransformer2DModel

NEW_LAYERS = ("pos_embed.proj.", "proj_out.")  # the parameters a widened model must relearn


def widen_patch_embedding(weight: torch.Tensor, scale: int) -> torch.Tensor:
    """Conv kernel [D, C, k, k] -> [D, C, k*s, k*s], each tap spread over an s x s block / s^2."""
    return weight.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3) / scale ** 2


def widen_output_rows(rows: torch.Tensor, patch: int, channels: int, scale: int) -> torch.Tensor:
    """Output rows [(P*P*C), ...] in (p, q, c) order -> [(Ps*Ps*C), ...], row (p, q, c) of the new
    patch taken from (p // s, q // s, c) of the old."""
    grid = rows.reshape(patch, patch, channels, *rows.shape[1:])
    return grid.repeat_interleave(scale, 0).repeat_interleave(scale, 1).reshape(-1, *rows.shape[1:])


def widen_patch(model: PixArtTransformer2DModel, scale: int) -> PixArtTransformer2DModel:
    """A copy of `model` with patch and sample size times `scale`: the same token grid."""
    config = dict(model.config)
    patch, channels = config["patch_size"], config["out_channels"]
    config.update(patch_size=patch * scale, sample_size=config["sample_size"] * scale)
    widened = PixArtTransformer2DModel.from_config(config)
    state = model.state_dict()
    state["pos_embed.proj.weight"] = widen_patch_embedding(state["pos_embed.proj.weight"], scale)
    for name in ("proj_out.weight", "proj_out.bias"):
        state[name] = widen_output_rows(state[name], patch, channels, scale)
    widened.load_state_dict(state)
    return widened.to(model.device, model.dtype)


def is_new_layer(name: str) -> bool:
    return name.startswith(NEW_LAYERS)
