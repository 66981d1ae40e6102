"""The request checks at the border: prompts are plain text, JSON fields are bounded in size and
depth, and no input gives anything but a valid request or a MedEditError."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.core.errors import MedEditError
from pipelines.core.limits import (BEND_RANGE, CONTROL_POINTS_RANGE, FRAMES_RANGE, LOCALITY_RANGE, MAX_JSON_CHARS,
                                   MAX_JSON_DEPTH, MAX_PROMPT_CHARS, SCALE_RANGE, SEED_MAX, SERIES_MODES,
                                   SLIDER_RANGE, STEPS_RANGE, SWAP_RANGE)
from pipelines.editing.requests import NOT_TEXT, Edit, Sampling, Series, integer, number, parse_json, prompt


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


# --- properties: any input is a valid request or a MedEditError, never another exception ----------

PROPERTY = settings(max_examples=150, deadline=None)
# Every code point, lone surrogates and control characters included.
any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=MAX_PROMPT_CHARS + 20)
prompt_like = st.one_of(any_text, st.sampled_from(["chest x-ray", "  dermoscopy, hair  ", "", "\t\n"]),
                        st.text(alphabet="ab \n\t\r\x00\ud800é", max_size=12))
numbers = st.one_of(st.integers(), st.integers(min_value=-2**5000, max_value=2**5000), st.floats(),
                    st.floats(allow_nan=False, allow_infinity=False, min_value=-200, max_value=200),
                    st.integers(min_value=-5, max_value=120), st.booleans(), st.none())
scalars = st.one_of(numbers, any_text, st.binary(max_size=8))
anything = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.one_of(any_text, st.integers()),
                                                                         inner, max_size=4)),
                        max_leaves=12)


def mostly_in(bounds) -> st.SearchStrategy:
    """Values in range half the time, so whole requests are often valid, and anything else."""
    inside = st.integers(*bounds) if isinstance(bounds[0], int) else st.floats(*bounds)
    return st.one_of(inside, numbers)


def is_plain_text(value: str) -> bool:
    return isinstance(value, str) and not NOT_TEXT.search(value) and len(value) <= MAX_PROMPT_CHARS


def within(value, bounds) -> bool:
    return isinstance(value, float) and math.isfinite(value) and bounds[0] <= value <= bounds[1]


@PROPERTY
@given(name=st.sampled_from(["seed", "steps"]), value=st.one_of(numbers, anything),
       low=st.integers(-10, 10), span=st.integers(0, 2**40))
def test_integer_is_in_range_or_refused(name, value, low, span):
    try:
        checked = integer(name, value, low, low + span)
    except MedEditError as error:
        assert str(error).startswith(name) and len(str(error)) < 300
        return
    assert type(checked) is int and low <= checked <= low + span


@PROPERTY
@given(value=st.one_of(numbers, anything), low=st.floats(-10, 0), high=st.floats(0, 10))
def test_number_is_finite_in_range_or_refused(value, low, high):
    try:
        checked = number("x", value, low, high)
    except MedEditError as error:
        assert len(str(error)) < 300
        return
    assert within(checked, (low, high))


@PROPERTY
@given(value=st.one_of(prompt_like, anything))
def test_prompt_is_plain_text_or_refused(value):
    try:
        checked = prompt("anatomy prompt", value)
    except MedEditError as error:
        assert str(error).startswith("anatomy prompt")
        return
    assert is_plain_text(checked) and checked == checked.strip()
    assert value is None or checked == value.strip()


@PROPERTY
@given(anatomy=st.one_of(prompt_like, anything), style=st.one_of(prompt_like, anything),
       seed=st.one_of(st.integers(-3, SEED_MAX + 3), numbers), steps=mostly_in(STEPS_RANGE),
       anatomy_scale=mostly_in(SCALE_RANGE), style_scale=mostly_in(SCALE_RANGE))
def test_sampling_is_valid_or_refused(anatomy, style, seed, steps, anatomy_scale, style_scale):
    try:
        s = Sampling(anatomy, style, seed, steps, anatomy_scale, style_scale)
    except MedEditError:
        return
    assert is_plain_text(s.anatomy) and is_plain_text(s.style) and (s.anatomy or s.style)
    assert type(s.seed) is int and 0 <= s.seed <= SEED_MAX
    assert type(s.steps) is int and STEPS_RANGE[0] <= s.steps <= STEPS_RANGE[1]
    assert within(s.anatomy_scale, SCALE_RANGE) and within(s.style_scale, SCALE_RANGE)


@PROPERTY
@given(to_anatomy=st.one_of(prompt_like, anything), to_style=st.one_of(prompt_like, anything),
       sliders=st.one_of(st.dictionaries(st.one_of(any_text, st.sampled_from(["hair", "ruler"])),
                                         mostly_in(SLIDER_RANGE), max_size=4), anything),
       swap_at=mostly_in(SWAP_RANGE), locality=mostly_in(LOCALITY_RANGE))
def test_edit_is_valid_or_refused(to_anatomy, to_style, sliders, swap_at, locality):
    try:
        e = Edit(to_anatomy, to_style, sliders, swap_at, locality)
    except MedEditError:
        return
    assert is_plain_text(e.to_anatomy) and is_plain_text(e.to_style)
    assert within(e.swap_at, SWAP_RANGE) and within(e.locality, LOCALITY_RANGE)
    assert all(is_plain_text(k) and within(v, SLIDER_RANGE) for k, v in e.sliders.items())
    assert 0 <= e.swap_step(STEPS_RANGE[1]) <= STEPS_RANGE[1]


@PROPERTY
@given(frames=mostly_in(FRAMES_RANGE), mode=st.one_of(st.sampled_from(SERIES_MODES), anything),
       control_points=mostly_in(CONTROL_POINTS_RANGE), bend=mostly_in(BEND_RANGE))
def test_series_is_valid_or_refused(frames, mode, control_points, bend):
    try:
        s = Series(frames, mode, control_points, bend)
    except MedEditError:
        return
    assert FRAMES_RANGE[0] <= s.frames <= FRAMES_RANGE[1] and s.mode in SERIES_MODES
    assert CONTROL_POINTS_RANGE[0] <= s.control_points <= CONTROL_POINTS_RANGE[1]
    assert within(s.bend, BEND_RANGE)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
              any_text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(any_text, inner, max_size=3)),
    max_leaves=20)
json_texts = st.one_of(
    json_values.map(json.dumps),
    st.text(alphabet='[]{}":,0123456789.eE-+ \\unNaIfity', max_size=200),  # near-JSON fragments
    st.integers(0, 6000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(0, 4000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
    st.integers(1, 6000).map(lambda digits: "9" * digits),
    any_text)


@PROPERTY
@given(text=st.one_of(json_texts, anything), max_depth=st.integers(1, 40))
def test_parse_json_is_json_loads_within_limits_or_refused(text, max_depth):
    try:
        value = parse_json("settings", text, max_depth=max_depth)
    except MedEditError as error:
        assert str(error).startswith("settings")
        return
    assert isinstance(text, str) and len(text) <= MAX_JSON_CHARS
    assert value == json.loads(text)  # the same value json.loads reads


@PROPERTY
@given(value=json_values)
def test_parse_json_reads_every_shallow_document_as_json_does(value):
    text = json.dumps(value)
    depth = json_depth_of(value)
    if len(text) <= MAX_JSON_CHARS and depth <= MAX_JSON_DEPTH:
        assert parse_json("settings", text) == value


def json_depth_of(value) -> int:
    if isinstance(value, list):
        return 1 + max((json_depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((json_depth_of(v) for v in value.values()), default=0)
    return 0
