"""An image the user brought, held for the edits made of it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from pipelines.editing.regions import Regions


@dataclass(frozen=True)
class HeldImage:
    """An image the user brought, as the pipeline edits it: its pixels (the app holds them fitted
    to the model's size; the API passes the file's own), the masks painted or sent with it, and
    the uploaded file's sha256 (the only thing of the file a result records)."""
    pixels: np.ndarray  # [H, W, 3] uint8
    sha256: str
    notes: tuple[str, ...] = ()
    edit_mask: np.ndarray | None = None  # [H, W] bool, the pixels' size or the model's
    keep_mask: np.ndarray | None = None
    burned_in: bool = False  # its pixels may show identifying text, accepted knowingly: outputs say so
    edit_anyway: bool = False  # edit it even where the domain check refuses it: outputs say so
    digest: str = field(init=False)  # of the pixels and masks: what a cached result depends on

    def __post_init__(self):
        h = hashlib.sha256(self.sha256.encode() + (b"+anyway" if self.edit_anyway else b""))
        for array in (self.pixels, self.edit_mask, self.keep_mask):
            h.update(b"-" if array is None else repr(array.shape).encode() + np.ascontiguousarray(array).tobytes())
        object.__setattr__(self, "digest", h.hexdigest())

    @property
    def regions(self) -> Regions | None:
        """The masks (checked: an empty edit mask or one the keep mask covers is refused)."""
        if self.edit_mask is None and self.keep_mask is None:
            return None
        return Regions(self.edit_mask, self.keep_mask)
