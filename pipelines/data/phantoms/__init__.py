"""Procedural phantoms: synthetic dermoscopy and chest X-ray images with known factors.

    from pipelines.data.phantoms import Phantom, sample_factors, render, phantom, FACTOR_CHOICES
    p = phantom("dermoscopy", seed=3, hair=True)      # sample_factors + overrides + render
    p.image, p.anatomy, p.style, p.labels, p.masks

Every image is synthetic, not a patient. Rendering is deterministic by (modality, factors, seed,
size); each factor draws from its own random stream, so re-rendering a seed with one factor changed
alters only that factor's mask (for "melanoma" the lesion, for "cardiomegaly" the heart).

masks: one HxW bool per binary attribute (empty when off), plus "lesion" (dermoscopy) and
"heart" (cxr), the objects that melanoma and cardiomegaly redraw (see CHANGE_REGION).
FACTOR_CHOICES[modality][name] is a FactorSpec: kind ("bool", "choice", "float"), choices or
[low, high], description. Errors are MedEditError naming what is allowed.
"""

from dataclasses import dataclass, field

import numpy as np

from pipelines.data.attributes import attributes_of, check_modality
from pipelines.data.phantoms.captions import caption as _caption
from pipelines.data.phantoms.cxr import render_cxr
from pipelines.data.phantoms.dermoscopy import render_dermoscopy
from pipelines.data.phantoms.factors import (FACTOR_CHOICES, SIZE_RANGE, FactorSpec, check_factors,
                                        check_size, sample_factors)

__all__ = ["Phantom", "sample_factors", "render", "phantom", "caption", "FACTOR_CHOICES", "FactorSpec",
           "SIZE_RANGE", "CHANGE_REGION", "SYNTHETIC_NOTE"]

SYNTHETIC_NOTE = "synthetic image, not a patient"

# The mask that bounds the pixels a binary attribute changes when toggled, if not its own:
# melanoma redraws the whole lesion, cardiomegaly enlarges the heart (union of both renders).
CHANGE_REGION = {"melanoma": "lesion", "cardiomegaly": "heart"}

_RENDERERS = {"dermoscopy": render_dermoscopy, "cxr": render_cxr}


@dataclass
class Phantom:
    modality: str
    seed: int
    image: np.ndarray  # HxWx3 uint8 RGB (CXR is grey shown as RGB)
    anatomy: str  # anatomy caption
    style: str  # style caption
    factors: dict  # every factor: binary attributes (bool) and the rest
    labels: dict[str, int]  # 0/1 per binary attribute of the modality, registry order
    masks: dict[str, np.ndarray] = field(repr=False)  # HxW bool per factor (empty when absent)


def caption(modality: str, factors: dict, seed: int) -> tuple[str, str]:
    """(anatomy, style) captions; wording varies by seed. Missing factors come from sample_factors."""
    return _caption(modality, check_factors(modality, factors, seed), seed)


def render(modality: str, factors: dict, seed: int, size: int = 128) -> Phantom:
    """Render one phantom, deterministic by its arguments. Missing factors come from sample_factors."""
    check_modality(modality)
    size = check_size(size)
    f = check_factors(modality, factors, seed)
    image, masks = _RENDERERS[modality](f, int(seed), size)
    anatomy, style = _caption(modality, f, seed)
    labels = {a.name: int(f[a.name]) for a in attributes_of(modality)}
    return Phantom(modality, int(seed), image, anatomy, style, f, labels, masks)


def phantom(modality: str, seed: int, size: int = 128, **overrides) -> Phantom:
    """sample_factors(modality, seed), updated with overrides, rendered. `lesion=False` alone
    gives bare skin: the sampled melanoma goes with the lesion (asking for both is refused)."""
    factors = sample_factors(modality, seed)
    if modality == "dermoscopy" and not overrides.get("lesion", True) and "melanoma" not in overrides:
        factors["melanoma"] = False
    factors.update(overrides)  # unknown names and bad values are caught by render
    return render(modality, factors, seed, size)
