"""The request checks at the border: prompts are plain text, JSON fields are bounded in size and
depth, and no input gives anything but a valid request or a MedEditError."""

import pytest

from pipelines.core.errors import MedEditError
from pipelines.core.limits import MAX_JSON_CHARS, MAX_JSON_DEPTH
from pipelines.editing.requests import Edit, Sampling, integer, number, parse_json, prompt


@pytest.mark.parametrize("text, message", [
    ("chest x-ray\x00", "control character (U+0000) at position 11"),
    ("chest\rx-ray", "control character (U+000D)"),
    ("chest \x7f", "control character (U+007F)"),
    ("chest \x85", "control character (U+0085)"),
    ("lungs \ud800", "lone surrogate (U+D800) at position 6"),
    ("\udfff", "lone surrogate (U+DFFF)"),
])
def test_prompts_that_are_not_text_are_refused_by_name(text, message):
    with pytest.raises(MedEditError, match=r"anatomy prompt contains .*") as caught:
        Sampling(text, "")
    assert message in str(caught.value)


def test_newline_tab_and_any_real_character_are_text():
    assert prompt("p", "\tleft lung\nright lung, é 漢字 🫁 ") == "left lung\nright lung, é 漢字 🫁"


@pytest.mark.parametrize("text, message", [
    ("[" * 5000, "nested 5000 levels deep; at most"),
    ('{"a":' * 3000, "nested 3000 levels deep"),
    ('{"hair": NaN}', "contains NaN; give finite numbers"),
    ('{"hair": -Infinity}', "contains -Infinity"),
    ("1" * 5000, "a number with too many digits"),
    ('{"hair": 1', "is not valid JSON"),
    ("x" * (MAX_JSON_CHARS + 1), f"at most {MAX_JSON_CHARS} are accepted"),
])
def test_json_fields_give_a_clear_message(text, message):
    with pytest.raises(MedEditError, match="sliders") as caught:
        parse_json("sliders", text)
    assert message in str(caught.value)


def test_json_depth_counts_brackets_outside_strings_only():
    nested = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert parse_json("settings", nested) is not None
    with pytest.raises(MedEditError, match="nested"):
        parse_json("settings", "[" + nested + "]")
    tricky = '{"a": "[[[[{{{{\\"[[[[", "b": [1, {"c": 2}]}'
    assert parse_json("settings", tricky, max_depth=3) == {"a": '[[[[{{{{"[[[[', "b": [1, {"c": 2}]}


def test_huge_numbers_are_refused_with_a_short_message():
    with pytest.raises(MedEditError, match="got a number too large"):
        integer("seed", 10**5000, 0, 10)
    with pytest.raises(MedEditError, match="between 0 and 1, got a number too large"):
        number("swap point", 10**400, 0, 1)


def test_slider_names_are_plain_text():
    with pytest.raises(MedEditError, match="slider name contains a lone surrogate"):
        Edit(sliders={"hair\ud800": 1.0})
    with pytest.raises(MedEditError, match="slider names must be text"):
        Edit(sliders={1: 1.0})
