"""The masks a user paints on their image in the upload panel's editor: one brush in two colours,
green where the edit may change the image, red where it must stay (the keep mask). The editor's
layers come back as RGBA images at the shown size; a pixel counts as painted where the paint's
opacity is above a quarter of the brush's (not an anti-aliased fringe), and its colour says which
mask it belongs to; the masks are then fitted to the model's size as the image was.
"""

from __future__ import annotations

import numpy as np

from pipelines.core.errors import MedEditError
from pipelines.data.uploads import file_bytes, fit_mask, open_pillow, sniff

EDIT_COLOUR, KEEP_COLOUR = "#16a34a", "#dc2626"  # green: may change; red: must stay
BRUSH_OPACITY = 0.55  # the image shows through the paint
PAINTED_ALPHA = 0.25 * BRUSH_OPACITY * 255


def painted_masks(layers: list, size: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(edit mask, keep mask) at size x size from the editor's layers (None where nothing of that
    colour was painted)."""
    edit = keep = None
    for layer in layers or []:
        rgba = np.asarray(layer)
        if rgba.ndim != 3 or rgba.shape[2] != 4:
            raise MedEditError(f"a painted layer must be an RGBA image, got shape {rgba.shape}")
        painted = rgba[..., 3] >= PAINTED_ALPHA
        red, green = rgba[..., 0].astype(int), rgba[..., 1].astype(int)
        edit = _union(edit, painted & (green > red))
        keep = _union(keep, painted & (red > green))
    fitted = [None if m is None or not m.any() else fit_mask(m, size) for m in (edit, keep)]
    return tuple(None if m is None or not m.any() else m for m in fitted)


def read_layer(path: str) -> np.ndarray:
    """A painted layer as the editor uploads it (a PNG), RGBA; its size checked before decoding."""
    data = file_bytes(path, "painted layer")
    if sniff(data) != "PNG":
        raise MedEditError("a painted layer must be a PNG image")
    return np.asarray(open_pillow(data, "PNG", "painted layer").convert("RGBA"))


def _union(a: np.ndarray | None, b: np.ndarray) -> np.ndarray:
    if a is not None and a.shape != b.shape:
        raise MedEditError(f"painted layers differ in size: {a.shape[:2]} and {b.shape[:2]}")
    return b if a is None else a | b


def describe_masks(edit: np.ndarray | None, keep: np.ndarray | None) -> str:
    """One line saying what the masks cover."""
    if edit is None and keep is None:
        return "No mask painted: the edit may change the whole image."
    parts = []
    if edit is not None:
        parts.append(f"the edit may change only the green area ({edit.mean():.0%} of the image)")
    if keep is not None:
        parts.append(f"the red area stays as it is ({keep.mean():.0%})")
    return "Masks: " + "; ".join(parts) + "."
