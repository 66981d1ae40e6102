"""Several edits at once on an inverted image (LEDITS++): one guidance term per edit.

An uploaded image's tail is guided by its source prompts plus one term per edit:
    eps = eps_src + sum_k w_k M_k (eps_k - eps_src)
eps_src and eps_k are two-scale guided predictions (sampling.guided_noise's formula) of the
source prompts and of edit k's prompts (the source with one slider applied, or the typed edited
prompts), all made in one forward pass that shares the null branch. w_k is the edit's own scale
(1 for a slider, whose size and sign already moved its tokens, as for a generated image;
a series' frames rise from 0 to 1) and M_k its own implicit mask: where that
term changes the prediction at the swap step (sampling.change_mask), so an edit stays where it
acts and two edits do not spread into each other. Outside the union of the implicit masks and
the caller's region the latents are the inversion's own (sampling.Keep). With no term the tail is
the inversion's run, which gives the image back. `refresh` last steps add fresh noise instead of
the inversion's (inversion.Inversion.tail_noises): inside the edit only, as Keep puts the
inversion's latents back outside.
"""

from dataclasses import dataclass

import torch

from pipelines.editing import sampling
from pipelines.editing.inversion import Inversion
from pipelines.editing.sampling import (Keep, Prefix, added_conditions, advance, change_mask, guidance_branches,
                                       guided_noise)
from pipelines.model.conditioners import Branches


@dataclass
class Term:
    """One edit: its prompts' branches ([B or 1, 3, L, D]) and its guidance weight (a number, or
    [B] weights: one per image, as a series' frames have)."""

    name: str
    branches: Branches
    weight: float | torch.Tensor = 1.0


class TermGuidance:
    """The noise prediction of the source prompts plus every term, for B images at once."""

    def __init__(self, transformer, source: Branches, terms: list[Term], anatomy_scale: float,
                 style_scale: float):
        self.transformer, self.source, self.terms = transformer, source, terms
        self.scales = (anatomy_scale, style_scale)
        self.masks: list[torch.Tensor] | None = None  # M_k, once set by the caller

    def predictions(self, x: torch.Tensor, t, between=None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """eps_src [B, C, h, w] and each term's eps_k, from one batch run in forwards of at most
        sampling.FORWARD_IMAGES images (a 64-frame series' step is hundreds), `between()` called
        between two, so that a shared device can change hands there; each image's result is the
        same bits whatever the pieces."""
        b, channels = x.shape[0], x.shape[1]
        anatomy_scale, style_scale = self.scales
        picked = guidance_branches(anatomy_scale, style_scale)[1:]  # the null branch is shared
        conditions = [c if c.tokens.shape[0] == b else c.repeat(b)
                      for c in [self.source] + [term.branches for term in self.terms]]
        tokens = torch.stack([conditions[0].tokens[:, 0]] + [c.tokens[:, j] for c in conditions for j in picked], 1)
        mask = torch.stack([conditions[0].mask[:, 0]] + [c.mask[:, j] for c in conditions for j in picked], 1)
        n = tokens.shape[1]  # 1 + (K + 1) * len(picked)
        xs = x.repeat_interleave(n, dim=0)  # [nB, C, h, w]
        tokens, mask = tokens.flatten(0, 1), mask.flatten(0, 1)
        pieces = []
        for start in range(0, n * b, sampling.FORWARD_IMAGES):
            if start and between is not None:
                between()
            part = slice(start, start + sampling.FORWARD_IMAGES)
            piece = xs[part]
            timestep = torch.full((piece.shape[0],), int(t), dtype=torch.long, device=x.device)
            pieces.append(self.transformer(piece, encoder_hidden_states=tokens[part].to(x.device, x.dtype),
                                           encoder_attention_mask=mask[part].to(x.device), timestep=timestep,
                                           added_cond_kwargs=added_conditions(self.transformer, piece)).sample)
        eps = torch.cat(pieces) if len(pieces) > 1 else pieces[0]
        eps = eps[:, :channels].view(b, n, *x.shape[1:])  # drop a learned variance
        e_null, guided = eps[:, 0], []
        for k in range(len(conditions)):
            if len(picked) == 1:
                guided.append(e_null + style_scale * (eps[:, 1 + k] - e_null))
            else:
                e_anatomy, e_full = eps[:, 1 + 2 * k], eps[:, 2 + 2 * k]
                guided.append(e_null + anatomy_scale * (e_anatomy - e_null) + style_scale * (e_full - e_anatomy))
        return guided[0], guided[1:]

    def combine(self, eps_source: torch.Tensor, eps_terms: list[torch.Tensor]) -> torch.Tensor:
        eps = eps_source
        for k, (term, eps_term) in enumerate(zip(self.terms, eps_terms)):
            weight = term.weight
            if isinstance(weight, torch.Tensor):
                weight = weight.to(eps.device, eps.dtype).view(-1, 1, 1, 1)
            change = weight * (eps_term - eps_source)
            eps = eps + (change if self.masks is None else self.masks[k] * change)
        return eps

    @property
    def single(self) -> bool:
        """One term at weight 1: eps = eps_src + M (eps_1 - eps_src) is eps_1 inside its mask, and
        outside it the tail puts the inversion's latents back after every step (edit_inverted), so
        eps_1 alone gives the same image for two thirds of the work."""
        return len(self.terms) == 1 and not isinstance(self.terms[0].weight, torch.Tensor) \
            and self.terms[0].weight == 1.0

    def __call__(self, x: torch.Tensor, t, between=None) -> torch.Tensor:
        if self.single:
            edited = self.terms[0].branches
            return guided_noise(self.transformer, x, t, edited if edited.tokens.shape[0] == x.shape[0]
                                else edited.repeat(x.shape[0]), *self.scales, between)
        return self.combine(*self.predictions(x, t, between))


def edit_inverted(transformer, inversion: Inversion, swap: int, source: Branches, terms: list[Term],
                  anatomy_scale: float, style_scale: float, locality: float = 0.0,
                  region: torch.Tensor | None = None, callback=None,
                  refresh: int = 0) -> tuple[Prefix, torch.Tensor | None]:
    """The inverted run's state at step `swap`, finished under the source prompts plus `terms`,
    with the inversion's noises (the last `refresh` steps' fresh). `locality` > 0 gives each term
    its implicit mask; `region` ([1 or B, 1, h, w], 1 where the image may change) bounds every
    edit. Returns the final state and where the edit could change the latents ([B or 1, 1, h, w];
    None: everywhere)."""
    states, steps = inversion.states, inversion.steps
    if not terms or swap >= steps:
        return states[-1], torch.zeros_like(states[-1].latents[:, :1])  # the image itself: no edit
    prefix = states[swap]
    b = max([prefix.latents.shape[0], source.tokens.shape[0]] + [t.branches.tokens.shape[0] for t in terms])
    guidance = TermGuidance(transformer, source, terms, anatomy_scale, style_scale)
    t = prefix.scheduler.timesteps[swap]
    x = prefix.scheduler.scale_model_input(prefix.latents, t).expand(b, -1, -1, -1)
    eps_source, eps_terms = guidance.predictions(x, t, None if callback is None else lambda: callback(swap))
    if locality > 0:
        guidance.masks = [change_mask(eps - eps_source, locality) for eps in eps_terms]
        union = torch.stack(guidance.masks).amax(0)
        region = union if region is None else union * region
    keep = None if region is None else Keep(region, [state.latents for state in states])
    final = advance(transformer, prefix, steps, source if source.tokens.shape[0] == b else source.repeat(b),
                    anatomy_scale, style_scale, callback, keep, guidance.combine(eps_source, eps_terms),
                    inversion.tail_noises(refresh), predict=guidance)
    return final, region
