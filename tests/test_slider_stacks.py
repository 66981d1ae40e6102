"""Stacked sliders (conditioners.slide): each slider's direction is taken in the prompt as the
sliders before it left it, so a stack at +-1 gives the tokens of typing it. Taken each in the
prompt alone and summed (the earlier way), two added phrases wrote the same token positions and
ruler + ink landed together in 0 of 12 edits (scripts/slider_ranges.py --stacks). One slider
moves the tokens exactly as before."""

import torch

from pipelines.model.conditioners import prompt_branches, slide, with_phrase, without_phrase

STYLE = "medium skin in bright lighting, showing gel bubbles"
RULER, INK, BUBBLES = "with a ruler visible", "showing ink", "showing gel bubbles"


def tokens(encode, sliders, chain=True, prompt=STYLE):
    return slide(encode, "style", prompt, encode("style", prompt), sliders, chain).tokens


def test_one_slider_moves_the_tokens_exactly_as_before(micro_pipeline):
    encode = micro_pipeline.channel
    for sliders in ([(RULER, 1.0)], [(RULER, 0.5)], [(BUBBLES, -1.0)], [(INK, 1.5)]):
        assert torch.equal(tokens(encode, sliders, chain=True), tokens(encode, sliders, chain=False))


def test_two_added_at_one_give_the_tokens_of_typing_both(micro_pipeline):
    encode = micro_pipeline.channel
    typed = encode("style", with_phrase(with_phrase(STYLE, RULER), INK)).tokens
    chained = tokens(encode, [(RULER, 1.0), (INK, 1.0)])
    assert torch.allclose(chained, typed, atol=1e-4)
    # The earlier way sums both phrases into the positions after the prompt's end: far from typed.
    added = tokens(encode, [(RULER, 1.0), (INK, 1.0)], chain=False)
    assert (added - typed).norm() > 100 * (chained - typed).norm() + 1.0


def test_a_removal_stacked_with_an_addition_gives_the_tokens_of_typing_both(micro_pipeline):
    encode = micro_pipeline.channel
    typed = encode("style", with_phrase(without_phrase(STYLE, BUBBLES), RULER)).tokens
    assert torch.allclose(tokens(encode, [(BUBBLES, -1.0), (RULER, 1.0)]), typed, atol=1e-4)


def test_stronger_stacked_sliders_scale_their_own_direction(micro_pipeline):
    """At 1.5 and 1 the first slider's step is half again its step at 1; the second's is the same."""
    encode = micro_pipeline.channel
    at_one = tokens(encode, [(RULER, 1.0), (INK, 1.0)])
    stronger = tokens(encode, [(RULER, 1.5), (INK, 1.0)])
    ruler_step = encode("style", with_phrase(STYLE, RULER)).tokens - encode("style", STYLE).tokens
    assert torch.allclose(stronger - at_one, 0.5 * ruler_step, atol=1e-4)


def test_the_pipeline_stacks_sliders_as_typing_them(micro_pipeline):
    """The branches an edit with two sliders at 1 samples from are those of the typed prompts."""
    encode = micro_pipeline.channel
    anatomy = "dermoscopy of a small lesion, melanocytic nevus (NV)"
    stacked = prompt_branches(encode, anatomy, STYLE, {"style": [(RULER, 1.0), (INK, 1.0)]})
    typed = prompt_branches(encode, anatomy, with_phrase(with_phrase(STYLE, RULER), INK))
    assert torch.allclose(stacked.tokens, typed.tokens, atol=1e-4)
