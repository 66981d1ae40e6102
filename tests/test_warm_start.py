"""The 64-px DiT carried to patch 4 (pipelines/training/warm_start.py): on a latent upsampled
twice, the widened model predicts the upsampled prediction of the original, exactly."""

import torch
import torch.nn.functional as F

from pipelines.model.presets import make_transformer
from pipelines.training.warm_start import is_new_layer, widen_patch


def test_widened_model_predicts_the_upsampled_prediction():
    torch.manual_seed(0)
    small = make_transformer("micro", latent_size=16).eval()
    for p in small.parameters():  # adaLN-zero starts the output at 0: give every weight a value
        p.data.normal_(0, 0.2)
    wide = widen_patch(small, 2).eval()
    assert wide.config.patch_size == 4 and wide.config.sample_size == 32
    x = torch.randn(2, small.config.in_channels, 16, 16)
    tokens = torch.randn(2, 5, small.config.cross_attention_dim)
    t = torch.tensor([10, 700])
    with torch.no_grad():
        expected = F.interpolate(small(x, encoder_hidden_states=tokens, timestep=t).sample, scale_factor=2)
        got = wide(F.interpolate(x, scale_factor=2), encoder_hidden_states=tokens, timestep=t).sample
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_only_the_patch_embedding_and_output_change_shape():
    small = make_transformer("micro", latent_size=16)
    wide = widen_patch(small, 2)
    changed = {name for name, p in wide.state_dict().items() if p.shape != small.state_dict()[name].shape}
    assert changed == {"pos_embed.proj.weight", "proj_out.weight", "proj_out.bias"}
    assert all(is_new_layer(name) for name in changed)
    torch.testing.assert_close(wide.pos_embed.pos_embed, small.pos_embed.pos_embed)  # same grid, same table
