"""What a caller may ask for, checked at the border: the CLI, the app and the API all pass here.

Every number is checked for type, finiteness and range, every prompt for type, length and valid
text, every attribute name against the model, every JSON field for size and nesting depth; the
message names the valid range or choices.
"""

import json
import math
import re
from dataclasses import dataclass, field

from pipelines.core.errors import MedEditError
from pipelines.core.limits import (BEND_RANGE, CONTROL_POINTS_DEFAULT, CONTROL_POINTS_RANGE, FRAMES_DEFAULT,
                                   FRAMES_RANGE, LOCALITY_RANGE, MAX_JSON_CHARS, MAX_JSON_DEPTH,
                                   MAX_PROMPT_CHARS, REFRESH_RANGE, SCALE_RANGE, SEED_MAX, SERIES_MODES,
                                   SLIDER_RANGE, STEPS_RANGE, SWAP_RANGE)

# Control characters (C0, DEL, C1) other than tab and newline, and lone UTF-16 surrogates: neither
# is text a tokenizer, a PNG text chunk or a UTF-8 file can hold.
NOT_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def shown(value, width: int = 40) -> str:
    """A short repr for a message: a client's value may be huge (an int past the digit limit
    cannot even be printed)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return "a number too large"
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def number(name: str, value, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MedEditError(f"{name} must be a number, got {shown(value)}")
    try:
        value = float(value)
    except OverflowError:  # an int past float's range
        raise MedEditError(f"{name} must be between {low:g} and {high:g}, got {shown(value)}") from None
    if not math.isfinite(value):
        raise MedEditError(f"{name} must be finite, got {value}")
    if not low <= value <= high:
        raise MedEditError(f"{name} must be between {low:g} and {high:g}, got {value:g}")
    return value


def integer(name: str, value, low: int, high: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MedEditError(f"{name} must be a whole number, got {shown(value)}")
    if not low <= value <= high:
        raise MedEditError(f"{name} must be between {low} and {high}, got {shown(value)}")
    return value


def prompt(name: str, value) -> str:
    """Text of at most MAX_PROMPT_CHARS, stripped; None is empty."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MedEditError(f"{name} must be text, got {type(value).__name__}")
    if len(value) > MAX_PROMPT_CHARS:
        raise MedEditError(f"{name} has {len(value)} characters; at most {MAX_PROMPT_CHARS} are accepted")
    return plain_text(name, value).strip()


def plain_text(name: str, value: str) -> str:
    """`value` itself, or a MedEditError naming the first character that is not text."""
    bad = NOT_TEXT.search(value)
    if bad:
        code = ord(bad.group())
        kind = "a lone surrogate" if 0xD800 <= code <= 0xDFFF else "a control character"
        raise MedEditError(f"{name} contains {kind} (U+{code:04X}) at position {bad.start()}; "
                           "give plain text (newline and tab are the only control characters allowed)")
    return value


def slider_name(value) -> str:
    """An attribute name as given (the model checks it exists): short plain text."""
    if not isinstance(value, str):
        raise MedEditError(f"slider names must be text, got {shown(value)}")
    if len(value) > MAX_PROMPT_CHARS:
        raise MedEditError(f"slider name has {len(value)} characters; at most {MAX_PROMPT_CHARS} are accepted")
    return plain_text("slider name", value)


def json_depth(text: str) -> int:
    """The deepest nesting of [ and { in JSON text, brackets inside strings not counted; a loop, not
    recursion, so any text is measured safely before json.loads sees it."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str):
    def refuse(constant: str):
        raise MedEditError(f"{name} JSON contains {constant}; give finite numbers")
    return refuse


def parse_json(name: str, text, max_chars: int = MAX_JSON_CHARS, max_depth: int = MAX_JSON_DEPTH):
    """JSON text of an API field, bounded in size and nesting depth, without NaN or Infinity.

    Every failure is a MedEditError naming the field: never a RecursionError or a bare ValueError.
    """
    if not isinstance(text, str):
        raise MedEditError(f"{name} must be JSON text, got {type(text).__name__}")
    if len(text) > max_chars:
        raise MedEditError(f"{name} JSON has {len(text)} characters; at most {max_chars} are accepted")
    depth = json_depth(text)
    if depth > max_depth:
        raise MedEditError(f"{name} JSON is nested {depth} levels deep; at most {max_depth} are accepted")
    try:
        return json.loads(text, parse_constant=_refuse_constant(name))
    except json.JSONDecodeError as error:
        raise MedEditError(f"{name} is not valid JSON: {error}") from None
    except MedEditError:
        raise
    except ValueError:  # the only other: an integer past Python's digit limit
        raise MedEditError(f"{name} JSON holds a number with too many digits") from None
    except RecursionError:  # not reached below the depth limit; kept so no parser error escapes
        raise MedEditError(f"{name} JSON is nested too deeply") from None


@dataclass
class Sampling:
    anatomy: str
    style: str
    seed: int = 0
    steps: int = 20
    anatomy_scale: float = 3.0
    style_scale: float = 3.0

    def __post_init__(self):
        self.anatomy = prompt("anatomy prompt", self.anatomy)
        self.style = prompt("style prompt", self.style)
        if not (self.anatomy or self.style):
            raise MedEditError("give an anatomy prompt, a style prompt, or both")
        self.seed = integer("seed", self.seed, 0, SEED_MAX)
        self.steps = integer("steps", self.steps, *STEPS_RANGE)
        self.anatomy_scale = number("anatomy strength", self.anatomy_scale, *SCALE_RANGE)
        self.style_scale = number("style strength", self.style_scale, *SCALE_RANGE)

    @classmethod
    def with_defaults(cls, defaults: dict, anatomy, style, seed=0, steps=None, anatomy_scale=None,
                      style_scale=None) -> "Sampling":
        """A request whose unset (None) settings are the model's `defaults` (its mededit.json)."""
        pick = lambda value, key: defaults[key] if value is None else value  # noqa: E731
        return cls(anatomy, style, seed, pick(steps, "steps"), pick(anatomy_scale, "anatomy_scale"),
                   pick(style_scale, "style_scale"))


@dataclass
class Edit:
    """The edited prompts (empty: same as the neutral one), sliders, the swap point, locality, and
    (for an uploaded image) how much of the end of the run draws fresh noise instead of the image's own."""

    to_anatomy: str = ""
    to_style: str = ""
    sliders: dict[str, float] = field(default_factory=dict)
    swap_at: float = 0.2  # fraction of the steps run with the neutral prompts; earlier = stronger
    locality: float = 0.0  # 0: the whole image may change; higher: only where the edit acts
    # An upload's recorded noises hold its fine detail, and so the traces of what a removal takes
    # away (hairs); the last `refresh` share of the steps draw fresh noise (from the seed) instead.
    refresh: float = 0.0

    def __post_init__(self):
        self.to_anatomy = prompt("edited anatomy prompt", self.to_anatomy)
        self.to_style = prompt("edited style prompt", self.to_style)
        self.swap_at = number("swap point", self.swap_at, *SWAP_RANGE)
        self.locality = number("locality", self.locality, *LOCALITY_RANGE)
        self.refresh = number("refresh", self.refresh, *REFRESH_RANGE)
        if not isinstance(self.sliders, dict):
            raise MedEditError("sliders must map attribute names to scales")
        sliders = {}
        for key, value in self.sliders.items():
            name = slider_name(key)
            sliders[name] = number(f"slider {name}", value, *SLIDER_RANGE)
        self.sliders = sliders

    @classmethod
    def with_defaults(cls, defaults: dict, to_anatomy="", to_style="", sliders=None, swap_at=None,
                      locality=None, refresh: float = 0.0) -> "Edit":
        """An edit whose unset (None) swap point and locality are the model's `defaults`."""
        return cls(to_anatomy, to_style, {} if sliders is None else sliders,
                   defaults["swap_at"] if swap_at is None else swap_at,
                   defaults["locality"] if locality is None else locality, refresh)

    def swap_step(self, steps: int) -> int:
        return min(steps, round(self.swap_at * steps))

    def refresh_steps(self, steps: int) -> int:
        """How many of the last steps draw fresh noise."""
        return round(self.refresh * steps)


@dataclass
class Series:
    frames: int = FRAMES_DEFAULT
    mode: str = "latent"
    control_points: int = CONTROL_POINTS_DEFAULT  # latent mode: neutral + swaps from weak to the edit's swap point
    bend: float = 0.0  # embedding mode: the middle control point, -1 late .. 1 early

    def __post_init__(self):
        self.frames = integer("frames", self.frames, *FRAMES_RANGE)
        if self.mode not in SERIES_MODES:
            raise MedEditError(f"unknown series mode {shown(self.mode)}; choose one of: {', '.join(SERIES_MODES)}")
        self.bend = number("bend", self.bend, *BEND_RANGE)
        self.control_points = integer("control points", self.control_points, *CONTROL_POINTS_RANGE)

    def latent_swaps(self, steps: int, strongest: int) -> list[int]:
        """Latent mode's swap steps, weak to strong: evenly from 0.9 of the steps (or the edit's own
        swap, if later) to the edit's own, one per control point after the neutral, rounded, without
        repeats (numpy.linspace's arithmetic, so the series stay as they were)."""
        weakest = max(strongest, round(0.9 * steps))
        n = self.control_points - 1
        if n == 1:
            return [weakest]
        step = (strongest - weakest) / (n - 1)
        return sorted({round(weakest + i * step) for i in range(n - 1)} | {strongest}, reverse=True)
