"""The same modality shifted further than the fit's own augmentation (domain_fit.shifted): what a
real image of a modality the model knows may look like next to its phantoms (a real chest X-ray:
fainter or harsher, another gamma, turned, blurred, cropped, from a smaller matrix). Such an image
is to be edited with a warning, not refused, so these set where `refuse` lies (domain_limits.py).

    image = far_shifted(image, rng)                  # a random far shift: fit-domain's tuning set
    image = far_variant(image, "contrast", 0.5)      # a given one: eval --domain's known-modality row

Each kind's range starts where domain_fit.shifted stops (contrast x0.75-1.33, gamma 0.75-1.33,
blur up to 1.5 px, a zoom of up to a tenth, a turn of up to 5 degrees).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from pipelines.core.errors import MedEditError

# kind -> the ranges a random far shift draws its strength from (either range, equally often)
FAR_RANGES = {
    "contrast": ((0.3, 0.6), (1.5, 2.0)),  # around the mean: a factor
    "gamma": ((0.4, 0.65), (1.6, 2.5)),  # an exponent on [0, 1] intensities
    "turned": ((-15.0, -6.0), (6.0, 15.0)),  # degrees, the corners filled with the border's colour
    "blurred": ((1.5, 3.0),),  # Gaussian radius in px at 128 px
    "cropped": ((0.6, 0.85),),  # the share of the width kept around a random centre, enlarged back
    "resampled": ((24, 48),),  # through a matrix of this many px and back (a low-resolution source)
}
FAR_KINDS = tuple(FAR_RANGES)
EQUALIZED = "equalized"  # histogram equalization (a viewer's): measured, never tuned on


def as_image(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(values, 0, 255).round().astype(np.uint8))


def far_variant(image: np.ndarray, kind: str, strength: float = 0.0,
                rng: np.random.Generator | None = None) -> np.ndarray:
    """`image` ([H, W, 3] uint8) shifted by one far kind at `strength` (FAR_RANGES' units)."""
    size = image.shape[0]
    if kind == "contrast":
        x = image.astype(np.float64)
        return np.asarray(as_image((x - x.mean()) * strength + x.mean()))
    if kind == "gamma":
        return np.asarray(as_image(255 * (image / 255.0) ** strength))
    if kind == "turned":
        fill = tuple(int(v) for v in image[0, 0])
        return np.asarray(as_image(image).rotate(strength, Image.Resampling.BILINEAR, fillcolor=fill))
    if kind == "blurred":
        return np.asarray(as_image(image).filter(ImageFilter.GaussianBlur(strength * size / 128)))
    if kind == "cropped":
        keep = int(round(size * strength))
        top, left = (np.random.default_rng(0) if rng is None else rng).integers(0, size - keep + 1, 2)
        crop = as_image(image[top:top + keep, left:left + keep])
        return np.asarray(crop.resize((size, size), Image.Resampling.BICUBIC))
    if kind == "resampled":
        small = as_image(image).resize((int(strength), int(strength)), Image.Resampling.BILINEAR)
        return np.asarray(small.resize((size, size), Image.Resampling.BICUBIC))
    if kind == EQUALIZED:
        return np.asarray(ImageOps.equalize(as_image(image)))
    raise MedEditError(f"unknown far shift {kind!r}; choose from {', '.join(FAR_KINDS + (EQUALIZED,))}")


def far_shifted(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One far kind at a random strength within its ranges."""
    kind = FAR_KINDS[int(rng.integers(len(FAR_KINDS)))]
    ranges = FAR_RANGES[kind]
    low, high = ranges[int(rng.integers(len(ranges)))]
    return far_variant(image, kind, float(rng.uniform(low, high)), rng)
