"""The words a model learned, and the words of a prompt it did not.

A model trained on the phantoms (a MedEdit folder: MiniLM prompts, no data of the user's) has read
only what the phantom captioner writes and its attributes' phrases, so a word outside them
("pneumothorax", "lateral") steers it nowhere the user can predict. The captioner's words are
collected by captioning many sampled phantoms: each wording slot picks among a handful of
options, so a few thousand seeds see every option (tests check that more add nothing).
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache

from pipelines.data.attributes import MODALITIES
from pipelines.data.phantoms.captions import caption
from pipelines.data.phantoms.factors import check_factors, sample_factors
from pipelines.model.info import ModelInfo
from pipelines.model.text_encoder import HUB_ID

CAPTION_SEEDS = 1000
WORD = re.compile(r"[a-z]+")


def words(text: str) -> list[str]:
    """Lower-case alphabetic words, in order (numbers and punctuation are not words here)."""
    return WORD.findall(text.lower())


@lru_cache(maxsize=4)
def caption_words(seeds: int = CAPTION_SEEDS) -> frozenset[str]:
    """Every word the phantom captioner writes, for both modalities."""
    found = set()
    for modality in MODALITIES:
        for seed in range(seeds):
            factors = check_factors(modality, sample_factors(modality, seed), seed)
            for text in caption(modality, factors, seed):
                found.update(words(text))
    return frozenset(found)


def learned_words(info: ModelInfo) -> frozenset[str] | None:
    """The words `info`'s model was trained on; None when they are not known (a PixArt model or an
    adapter trained on the user's own captions)."""
    if info.text_encoder != HUB_ID or "data" in info.training:
        return None
    phrases = {word for a in info.attributes for word in words(a["phrase"])}
    return caption_words() | phrases


def not_learned(prompt: str, vocabulary: frozenset[str]) -> list[str]:
    """The words of `prompt` outside `vocabulary`, each once, in order. Exact words: the model
    read "hairs", and "hair" is another token to it."""
    return list(dict.fromkeys(w for w in words(prompt) if w not in vocabulary))


def learned_instead(word: str, vocabulary: frozenset[str]) -> str | None:
    """The learned word `word` most likely means (a plural, a typo), if one is close and starts
    alike ("lateral" is not "bilateral")."""
    alike = sorted(w for w in vocabulary if w[:2] == word[:2])
    close = difflib.get_close_matches(word, alike, n=1, cutoff=0.85)
    return close[0] if close else None
