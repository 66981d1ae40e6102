"""What the PNG/JPEG and the DICOM readers of uploads share: the errors a damaged file raises, the
pixel-count check made before decoding, and grey values to RGB."""

import numpy as np

from pipelines.core.errors import MedEditError
from pipelines.core.limits import MAX_UPLOAD_PIXELS

# What Pillow or pydicom raise on a damaged file (zlib and struct errors come up as these).
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
                 AttributeError, NotImplementedError, RuntimeError, MemoryError)


def check_pixels(width: int, height: int, what: str = "image") -> None:
    if width < 1 or height < 1:
        raise MedEditError(f"the {what} is empty ({width}x{height})")
    if width * height > MAX_UPLOAD_PIXELS:
        raise MedEditError(f"the {what} is {width}x{height} = {width * height / 1e6:.0f} megapixels; at "
                           f"most {MAX_UPLOAD_PIXELS / 1e6:.0f} are accepted (refused before decoding)")


def grey_to_rgb(unit: np.ndarray) -> np.ndarray:
    grey = np.round(np.clip(unit, 0, 1) * 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)
