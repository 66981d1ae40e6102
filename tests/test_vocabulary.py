"""The words a phantom-trained model learned, and a prompt's words it did not."""

import dataclasses

from pipelines.data.attributes import MODALITIES
from pipelines.data.phantoms.captions import caption
from pipelines.data.phantoms.factors import check_factors, sample_factors
from pipelines.editing.vocabulary import caption_words, learned_instead, learned_words, not_learned, words
from pipelines.model.info import ModelInfo

EMBEDDED = ModelInfo.embedded_default()


def test_the_captioners_words_are_all_collected():
    """Seeds far from the ones collected add no word: the collection has seen every option."""
    vocabulary = caption_words()
    assert caption_words(300) == vocabulary  # saturated long before the seeds used
    for modality in MODALITIES:
        for seed in range(50_000, 50_300):
            for text in caption(modality, check_factors(modality, sample_factors(modality, seed), seed), seed):
                assert set(words(text)) <= vocabulary, text


def test_words_the_model_never_read_are_flagged():
    vocabulary = learned_words(EMBEDDED)
    flagged = not_learned("Chest X-ray with a pneumothorax and a chest tube, lateral view", vocabulary)
    assert flagged == ["pneumothorax", "tube", "lateral"]
    assert not_learned("Chest X-ray showing right pleural effusion, with a pacemaker with leads", vocabulary) == []
    assert not_learned("", vocabulary) == []


def test_the_ready_edits_use_only_learned_words():
    from app.examples import EXAMPLES
    vocabulary = learned_words(EMBEDDED)
    for example in EXAMPLES:
        for prompt in (example.anatomy, example.style, example.to_anatomy, example.to_style):
            assert not_learned(prompt, vocabulary) == [], (example.label, prompt)


def test_a_close_learned_word_is_offered_only_when_it_is_close():
    vocabulary = learned_words(EMBEDDED)
    assert learned_instead("hair", vocabulary) == "hairs"
    assert learned_instead("effusoin", vocabulary) == "effusion"
    assert learned_instead("lateral", vocabulary) is None  # not "bilateral" nor "laterality"
    assert learned_instead("pneumothorax", vocabulary) is None


def test_no_vocabulary_for_models_that_read_other_captions():
    t5 = dataclasses.replace(EMBEDDED, text_encoder="PixArt-alpha/PixArt-XL-2-512x512 (T5)")
    users_data = dataclasses.replace(EMBEDDED, training={"data": "data/mine"})
    assert learned_words(t5) is None and learned_words(users_data) is None
    assert "melanoma" in learned_words(EMBEDDED)
