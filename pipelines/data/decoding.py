"""What the PNG/JPEG and the DICOM readers of uploads share: the errors a damaged file raises, the
size checks made before decoding, and the conversion of decoded values to RGB.

Two bounds hold before anything is decoded: the frame's pixels (MAX_UPLOAD_PIXELS) and the bytes
the decoder will hold for it (MAX_DECODED_BYTES: a 16-bit or RGBA frame costs more than an 8-bit
grey one of the same size). The conversions then work a block of rows at a time, so their float
temporaries stay a few MiB whatever the image's size: a small file cannot take the server past
the figure the README states.
"""

from collections.abc import Callable

import numpy as np

from pipelines.core.errors import MedEditError
from pipelines.core.limits import MAX_DECODED_BYTES, MAX_UPLOAD_PIXELS

# What Pillow or pydicom raise on a damaged file (zlib and struct errors come up as these).
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
                 AttributeError, NotImplementedError, RuntimeError, MemoryError)
BLOCK_PIXELS = 1 << 20  # pixels converted at once: each float64 temporary is 8 MiB (24 for RGB)


def check_pixels(width: int, height: int, what: str = "image") -> None:
    if width < 1 or height < 1:
        raise MedEditError(f"the {what} is empty ({width}x{height})")
    if width * height > MAX_UPLOAD_PIXELS:
        raise MedEditError(f"the {what} is {width}x{height} = {width * height / 1e6:.0f} megapixels; at "
                           f"most {MAX_UPLOAD_PIXELS / 1e6:.0f} are accepted (refused before decoding)")


def check_decoded_bytes(width: int, height: int, bytes_per_pixel: int, what: str = "image") -> None:
    """The bytes the decoder will hold for the frame, refused past MAX_DECODED_BYTES."""
    size = width * height * bytes_per_pixel
    if size > MAX_DECODED_BYTES:
        raise MedEditError(f"the {what} is {width}x{height} at {bytes_per_pixel} bytes a pixel: "
                           f"{size / 2**20:.0f} MiB once decoded; at most {MAX_DECODED_BYTES / 2**20:.0f} MiB "
                           "are accepted (refused before decoding)")


def row_blocks(height: int, width: int) -> list[slice]:
    step = max(1, BLOCK_PIXELS // max(width, 1))
    return [slice(top, min(top + step, height)) for top in range(0, height, step)]


def rgb_by_rows(height: int, width: int, rgb_of: Callable[[slice], np.ndarray]) -> np.ndarray:
    """[H, W, 3] uint8 filled from rgb_of(rows) ([rows, W, 3] uint8), a block of rows at a time."""
    out = np.empty((height, width, 3), np.uint8)
    for rows in row_blocks(height, width):
        out[rows] = rgb_of(rows)
    return out


def unit_to_grey(unit: np.ndarray) -> np.ndarray:
    """Grey in [0, 1] (clipped) as [..., 3] uint8."""
    grey = np.round(np.clip(unit, 0, 1) * 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def grey_by_rows(height: int, width: int, unit_of: Callable[[slice], np.ndarray]) -> np.ndarray:
    """[H, W, 3] uint8 from unit_of(rows): grey values in [0, 1] of those rows."""
    return rgb_by_rows(height, width, lambda rows: unit_to_grey(unit_of(rows)))


def grey_to_rgb(unit: np.ndarray) -> np.ndarray:
    return grey_by_rows(*unit.shape[:2], lambda rows: unit[rows])
