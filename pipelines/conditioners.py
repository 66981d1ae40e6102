"""Prompts to cross-attention tokens, one channel at a time, and attribute slider directions.

A conditioner turns an anatomy or a style prompt into that channel's tokens; an empty prompt gives
the channel's null tokens. Sliders move a channel's tokens along an attribute's direction, the
difference between the prompt with and without the attribute's phrase, in the space the DiT reads.
"""

import re
from dataclasses import dataclass

import torch

from pipelines.conditioning import DisentangledProjector
from pipelines.sampling import Branches
from pipelines.text_encoder import TextEncoder


@dataclass
class ChannelTokens:
    tokens: torch.Tensor  # [1, L, D]
    mask: torch.Tensor  # [1, L]
    truncated: str = ""


class EmbeddedConditioner:
    """MiniLM token states through the HFFM projector's branch for the channel."""

    def __init__(self, encoder: TextEncoder, projector: DisentangledProjector):
        self.encoder, self.projector = encoder, projector

    @torch.no_grad()
    def encode(self, channel: str, prompt: str) -> ChannelTokens:
        encoded = self.encoder.encode([prompt])
        is_null = torch.tensor([not prompt.strip()])
        tokens, mask = self.projector.project(channel, encoded.states, encoded.mask, is_null)
        return ChannelTokens(tokens, mask, encoded.truncated[0])


def without_phrase(prompt: str, phrase: str) -> str:
    """The prompt with every occurrence of the phrase removed and the commas tidied."""
    text = re.sub(re.escape(phrase), "", prompt, flags=re.IGNORECASE)
    text = re.sub(r"\s*,\s*(,\s*)+", ", ", text)
    return re.sub(r"\s+", " ", text).strip(" ,")


def with_phrase(prompt: str, phrase: str) -> str:
    if phrase.lower() in prompt.lower():
        return prompt
    return f"{prompt}, {phrase}" if prompt.strip() else phrase


def slide(encode, channel: str, prompt: str, base: ChannelTokens,
          sliders: list[tuple[str, float]]) -> ChannelTokens:
    """Move `base` (the tokens of `prompt`) by scale x (with phrase - without phrase) per slider.

    Scale 1 adds an absent attribute as if its phrase were typed, -1 removes a present one, and
    values in between or beyond give weaker, stronger or opposite edits. `encode(channel, prompt)`
    gives a prompt's tokens (the pipeline passes its cached encoder).
    """
    tokens, mask = base.tokens.clone(), base.mask.clone()
    for phrase, scale in sliders:
        if scale == 0:
            continue
        plus = encode(channel, with_phrase(prompt, phrase))
        minus = encode(channel, without_phrase(prompt, phrase))
        tokens = tokens + scale * (plus.tokens - minus.tokens)
        mask = torch.maximum(mask, torch.maximum(plus.mask, minus.mask))
    return ChannelTokens(tokens, mask, base.truncated)


def branches(null_a: ChannelTokens, null_s: ChannelTokens, anatomy: ChannelTokens,
             style: ChannelTokens) -> Branches:
    """The three guidance branches (0,0), (a,0), (a,s) for one image."""
    def joined(a, s):
        return torch.cat([a.tokens, s.tokens], 1), torch.cat([a.mask, s.mask], 1)

    pairs = [joined(null_a, null_s), joined(anatomy, null_s), joined(anatomy, style)]
    tokens = torch.stack([p[0][0] for p in pairs])[None]  # [1, 3, L, D]
    mask = torch.stack([p[1][0] for p in pairs])[None]  # [1, 3, L]
    return Branches(tokens, mask)
