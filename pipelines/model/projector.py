"""Disentangled conditioning after VG-MedGen's Hybrid Feature Fusion Module (HFFM).

Anatomy and style text are encoded apart; each channel has its own projection branch and a learned
channel-type embedding, and the two token sequences are joined as the DiT's cross-attention input.
An empty channel becomes learned null tokens (trained by dropping each channel 10% of the time), so
"no anatomy" and "no style" are the unconditional branches of two-scale guidance. Each branch also
has an alignment head that predicts the channel's visual prior from its pooled tokens.
"""

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

CHANNELS = ("anatomy", "style")


class ChannelBranch(nn.Module):
    """LayerNorm -> MLP, plus the channel's type embedding: text states to DiT caption tokens."""

    def __init__(self, text_dim: int, dim: int, null_tokens: int, prior_dim: int,
                 hidden_dim: int | None = None):
        super().__init__()
        hidden = hidden_dim or dim  # VG-MedGen's HFFM is 8 -> 256 -> 4096: narrow in the middle
        self.mlp = nn.Sequential(nn.LayerNorm(text_dim), nn.Linear(text_dim, hidden), nn.GELU(),
                                 nn.Linear(hidden, dim))
        self.type_embedding = nn.Parameter(torch.zeros(1, 1, dim))
        self.null = nn.Parameter(torch.randn(1, null_tokens, dim) * 0.02)
        self.align_head = nn.Linear(dim, prior_dim)

    def forward(self, states, mask, is_null):
        tokens = self.mlp(states) + self.type_embedding  # [B, L, D]
        if is_null.any():
            # A null channel: its first tokens are the learned nulls, the rest is masked out.
            n = self.null.shape[1]
            null_tokens = torch.zeros_like(tokens)
            null_tokens[:, :n] = self.null.to(tokens.dtype) + self.type_embedding
            null_mask = torch.zeros_like(mask)
            null_mask[:, :n] = 1
            pick = is_null[:, None, None]
            tokens = torch.where(pick, null_tokens, tokens)
            mask = torch.where(is_null[:, None], null_mask, mask)
        return tokens, mask

    def predict_prior(self, tokens, mask):
        weights = mask[..., None].to(tokens.dtype)
        pooled = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1)  # [B, D]
        return self.align_head(pooled)  # [B, P]


class DisentangledProjector(ModelMixin, ConfigMixin):
    """Two HFFM branches whose outputs are concatenated along the token axis."""

    @register_to_config
    def __init__(self, text_dim: int = 384, dim: int = 192, null_tokens: int = 4,
                 anatomy_prior_dim: int = 8, style_prior_dim: int = 8, hidden_dim: int | None = None):
        super().__init__()
        # hidden_dim None (configs saved before it existed) means `dim`, the original width.
        self.anatomy = ChannelBranch(text_dim, dim, null_tokens, anatomy_prior_dim, hidden_dim)
        self.style = ChannelBranch(text_dim, dim, null_tokens, style_prior_dim, hidden_dim)

    def branch(self, channel: str) -> ChannelBranch:
        return self.anatomy if channel == "anatomy" else self.style

    def project(self, channel, states, mask, is_null=None):
        """One channel's tokens [B, L, D] and mask [B, L]; `is_null` [B] selects the null tokens."""
        if is_null is None:
            is_null = mask.sum(1) <= 2  # only [CLS] [SEP]: an empty prompt
        return self.branch(channel)(states, mask, is_null)

    def forward(self, anatomy_states, anatomy_mask, style_states, style_mask,
                anatomy_null=None, style_null=None):
        a_tokens, a_mask = self.project("anatomy", anatomy_states, anatomy_mask, anatomy_null)
        s_tokens, s_mask = self.project("style", style_states, style_mask, style_null)
        return join(a_tokens, a_mask, s_tokens, s_mask)


def join(a_tokens, a_mask, s_tokens, s_mask):
    """The cross-attention input: anatomy tokens then style tokens, masks likewise."""
    return torch.cat([a_tokens, s_tokens], 1), torch.cat([a_mask, s_mask], 1)
