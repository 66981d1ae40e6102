"""How a result's images are shown on the page; downloads and the API always hold the true pixels.

An image too small to read at its own pixels (the 64-px model's) is enlarged by a whole factor,
nearest neighbour: each true pixel a crisp square, nothing invented between them, and the page draws
it without smoothing (its file name says so: app/ui.CSS). An image large enough (the 256-px model's)
is shown at its own pixels and the page scales it smoothly: squares of one or two screen pixels
read as artefacts, not as pixels. One rule for every model, from the image's own size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

DISPLAY_SIZE = 384  # px: what a small image is enlarged to, at most
MIN_FACTOR = 4  # a smaller whole factor is left to the page's smooth scaling
BLOCKS = ".blocks"  # in a shown file's name: drawn without smoothing (app/ui.CSS)


def as_image(image: np.ndarray | Image.Image) -> Image.Image:
    return image if isinstance(image, Image.Image) else Image.fromarray(image)


@dataclass(frozen=True)
class View:
    factor: int  # whole nearest-neighbour enlargement; 1: the image's own pixels

    @classmethod
    def of(cls, image: np.ndarray | Image.Image) -> "View":
        """The view of images of this one's size (a result's images all have the model's)."""
        factor = DISPLAY_SIZE // max(as_image(image).size)
        return cls(factor if factor >= MIN_FACTOR else 1)

    @property
    def in_blocks(self) -> bool:
        return self.factor > 1

    def image(self, image: np.ndarray | Image.Image) -> Image.Image:
        image = as_image(image)
        if not self.in_blocks:
            return image
        return image.resize((image.width * self.factor, image.height * self.factor), Image.NEAREST)

    def name(self, name: str) -> str:
        """A shown file's name: marked when the page must draw it without smoothing."""
        return name + BLOCKS if self.in_blocks else name

    def note(self) -> str:
        if self.in_blocks:
            return (f"shown enlarged {self.factor}x with nearest neighbour (each true pixel a square); "
                    "downloads hold the true pixels")
        return "shown at its own pixels (the page scales it smoothly); downloads hold the same pixels"
