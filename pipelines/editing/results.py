"""What an edit or a series gives back: images as arrays, the settings that made them, notes."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class EditResult:
    neutral: np.ndarray  # [H, W, 3] uint8 (an uploaded image's reconstruction)
    edited: np.ndarray
    settings: dict
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    prefix_cached: bool = False  # the neutral run (or an upload's inversion) came from the cache


@dataclass
class SeriesResult:
    frames: list[np.ndarray]
    times: list[float]
    settings: dict
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
