"""Prompts to cross-attention tokens, one channel at a time, and attribute slider directions.

A conditioner turns an anatomy or a style prompt into that channel's tokens; an empty prompt gives
the channel's null tokens. Sliders move a channel's tokens along an attribute's direction, the
difference between the prompt with and without the attribute's phrase, in the space the DiT reads.
"""

import re
from dataclasses import dataclass

import torch

from pipelines.core.lru import LRU
from pipelines.model.projector import DisentangledProjector
from pipelines.model.text_encoder import TextEncoder


@dataclass
class ChannelTokens:
    tokens: torch.Tensor  # [1, L, D]
    mask: torch.Tensor  # [1, L]
    truncated: str = ""


@dataclass
class Branches:
    """Cross-attention inputs of the three guidance branches for B images."""

    tokens: torch.Tensor  # [B, 3, L, D]: (null, null), (anatomy, null), (anatomy, style)
    mask: torch.Tensor  # [B, 3, L]

    def repeat(self, n: int) -> "Branches":
        return Branches(self.tokens.expand(n, -1, -1, -1), self.mask.expand(n, -1, -1))

    @staticmethod
    def cat(items: list["Branches"]) -> "Branches":
        return Branches(torch.cat([b.tokens for b in items]), torch.cat([b.mask for b in items]))


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


def cached(encode, size: int):
    """`encode(channel, prompt)` with its tokens kept: every image needs the null prompts, and a
    slider move encodes the same prompts again."""
    kept = LRU(size)

    def lookup(channel: str, prompt: str) -> ChannelTokens:
        key = (channel, prompt)
        return kept.get(key) or kept.put(key, encode(channel, prompt))

    return lookup


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
          sliders: list[tuple[str, float]], chain: bool = True) -> ChannelTokens:
    """Move `base` (the tokens of `prompt`) by scale x (with phrase - without phrase) per slider.

    Scale 1 adds an absent attribute as if its phrase were typed, -1 removes a present one, and
    values in between or beyond give weaker, stronger or opposite edits. `encode(channel, prompt)`
    gives a prompt's tokens (the pipeline passes its cached encoder).

    Stacked sliders are chained: each direction is taken in the prompt as the sliders before it
    left it (their phrases added or removed), so every added phrase has token positions of its own
    and a stack at +-1 gives exactly the tokens of typing it. Taken each in the prompt alone
    (chain=False, the earlier way, kept as the measurement's baseline), two added phrases both
    write the positions after the prompt's end, summed into neither (slider_ranges.py --stacks:
    ruler +1 with ink +1 landed together in 0 of 12 edits).
    """
    tokens, mask = base.tokens.clone(), base.mask.clone()
    context = prompt
    for phrase, scale in sliders:
        if scale == 0:
            continue
        plus = encode(channel, with_phrase(context, phrase))
        minus = encode(channel, without_phrase(context, phrase))
        tokens = tokens + scale * (plus.tokens - minus.tokens)
        mask = torch.maximum(mask, torch.maximum(plus.mask, minus.mask))
        if chain:
            context = with_phrase(context, phrase) if scale > 0 else without_phrase(context, phrase)
    return ChannelTokens(tokens, mask, base.truncated)


def branches(null_a: ChannelTokens, null_s: ChannelTokens, anatomy: ChannelTokens,
             style: ChannelTokens) -> Branches:
    """The three guidance branches (0,0), (a,0), (a,s) for one image."""
    return stack_branches([(null_a, null_s), (anatomy, null_s), (anatomy, style)])


def stack_branches(pairs: list[tuple[ChannelTokens, ChannelTokens]]) -> Branches:
    """Each (anatomy, style) pair's tokens joined along the token axis, one branch per pair."""
    tokens = torch.stack([torch.cat([a.tokens, s.tokens], 1)[0] for a, s in pairs])[None]  # [1, 3, L, D]
    mask = torch.stack([torch.cat([a.mask, s.mask], 1)[0] for a, s in pairs])[None]  # [1, 3, L]
    return Branches(tokens, mask)


def join_prompts(anatomy: str, style: str) -> str:
    """The single prompt of a model trained with joined conditioning (the ablation's baseline)."""
    return ", ".join(p.strip() for p in (anatomy, style) if p.strip())


def cut_notes(encode, anatomy: str, style: str, joined: bool = False) -> list[str]:
    """One note per prompt that the text window cuts, naming the part the model does not read."""
    if joined:  # one prompt, read by the anatomy channel
        channels = [("joined", "anatomy", join_prompts(anatomy, style))]
    else:
        channels = [("anatomy", "anatomy", anatomy), ("style", "style", style)]
    notes = []
    for name, channel, prompt in channels:
        cut = encode(channel, prompt).truncated
        if cut:
            notes.append(f"the {name} prompt is too long; ignored: '{cut}'")
    return notes


def prompt_branches(encode, anatomy: str, style: str, sliders: dict | None = None,
                    joined: bool = False, chain: bool = True) -> Branches:
    """One image's guidance branches from its prompts; `sliders` maps a channel to its
    (phrase, scale) pairs (stacked as `slide` says). A joined model reads both prompts in its
    anatomy channel with the style channel null, so its (a,0) branch is the anatomy prompt alone
    and every slider moves the joined prompt."""
    sliders = sliders or {}
    a_sliders, s_sliders = sliders.get("anatomy", []), sliders.get("style", [])
    null_a, null_s = encode("anatomy", ""), encode("style", "")
    anatomy_tokens = slide(encode, "anatomy", anatomy, encode("anatomy", anatomy), a_sliders, chain)
    if joined:
        both = join_prompts(anatomy, style)
        both_tokens = slide(encode, "anatomy", both, encode("anatomy", both), a_sliders + s_sliders, chain)
        return stack_branches([(null_a, null_s), (anatomy_tokens, null_s), (both_tokens, null_s)])
    style_tokens = slide(encode, "style", style, encode("style", style), s_sliders, chain)
    return branches(null_a, null_s, anatomy_tokens, style_tokens)
