"""What a caller may ask for, checked at the border: the CLI, the app and the API all pass here.

Every number is checked for type, finiteness and range, every prompt for type and length, every
attribute name against the model; the message names the valid range or choices.
"""

import math
from dataclasses import dataclass, field

from pipelines.core.errors import MedEditError
from pipelines.core.limits import (BEND_RANGE, CONTROL_POINTS_DEFAULT, CONTROL_POINTS_RANGE, FRAMES_DEFAULT,
                                   FRAMES_RANGE, LOCALITY_RANGE, MAX_PROMPT_CHARS, SCALE_RANGE, SEED_MAX,
                                   SERIES_MODES, SLIDER_RANGE, STEPS_RANGE, SWAP_RANGE)


def number(name: str, value, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MedEditError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise MedEditError(f"{name} must be finite, got {value}")
    if not low <= value <= high:
        raise MedEditError(f"{name} must be between {low:g} and {high:g}, got {value:g}")
    return value


def integer(name: str, value, low: int, high: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MedEditError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise MedEditError(f"{name} must be between {low} and {high}, got {value}")
    return value


def prompt(name: str, value) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MedEditError(f"{name} must be text, got {type(value).__name__}")
    if len(value) > MAX_PROMPT_CHARS:
        raise MedEditError(f"{name} has {len(value)} characters; at most {MAX_PROMPT_CHARS} are accepted")
    return value.strip()


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
    """The edited prompts (empty: same as the neutral one), sliders, and the swap point."""

    to_anatomy: str = ""
    to_style: str = ""
    sliders: dict[str, float] = field(default_factory=dict)
    swap_at: float = 0.2  # fraction of the steps run with the neutral prompts; earlier = stronger
    locality: float = 0.0  # 0: the whole image may change; higher: only where the edit acts

    def __post_init__(self):
        self.to_anatomy = prompt("edited anatomy prompt", self.to_anatomy)
        self.to_style = prompt("edited style prompt", self.to_style)
        self.swap_at = number("swap point", self.swap_at, *SWAP_RANGE)
        self.locality = number("locality", self.locality, *LOCALITY_RANGE)
        if not isinstance(self.sliders, dict):
            raise MedEditError("sliders must map attribute names to scales")
        self.sliders = {str(k): number(f"slider {k}", v, *SLIDER_RANGE) for k, v in self.sliders.items()}

    @classmethod
    def with_defaults(cls, defaults: dict, to_anatomy="", to_style="", sliders=None, swap_at=None,
                      locality=None) -> "Edit":
        """An edit whose unset (None) swap point and locality are the model's `defaults`."""
        return cls(to_anatomy, to_style, {} if sliders is None else sliders,
                   defaults["swap_at"] if swap_at is None else swap_at,
                   defaults["locality"] if locality is None else locality)

    def swap_step(self, steps: int) -> int:
        return min(steps, round(self.swap_at * steps))


@dataclass
class Series:
    frames: int = FRAMES_DEFAULT
    mode: str = "latent"
    control_points: int = CONTROL_POINTS_DEFAULT  # latent mode: neutral + swaps from weak to the edit's swap point
    bend: float = 0.0  # embedding mode: the middle control point, -1 late .. 1 early

    def __post_init__(self):
        self.frames = integer("frames", self.frames, *FRAMES_RANGE)
        if self.mode not in SERIES_MODES:
            raise MedEditError(f"unknown series mode {self.mode!r}; choose one of: {', '.join(SERIES_MODES)}")
        self.bend = number("bend", self.bend, *BEND_RANGE)
        self.control_points = integer("control points", self.control_points, *CONTROL_POINTS_RANGE)
