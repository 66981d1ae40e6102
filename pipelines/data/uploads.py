"""Images a user brings: PNG (8 or 16 bit; grey, RGB, RGBA), JPEG and DICOM, read safely.

    decoded = read_image(path_or_bytes)     # checks, decodes: [H, W, 3] uint8 at the file's own size
    upload = fit(decoded, size=64)          # resized and centre-cropped to the model's size
    mask = read_mask(path_or_bytes)         # [H, W] bool; fit_mask(mask, 64) fits it the same way

Every refusal is a MedEditError that says why: a file over MAX_UPLOAD_BYTES, a format other than
these three, a frame over MAX_UPLOAD_PIXELS (read from the header, before any decoding: a
decompression bomb never expands), a corrupt or truncated file, a DICOM without pixel data or
compressed in a transfer syntax no installed decoder reads, a DICOM whose pixels may show
identifying text (burned-in annotation; unless allowed: burned_in.py). What was done to the image (16 bits
to 8, a DICOM window, MONOCHROME1 inverted, transparency flattened, the first of several frames,
resizing) is said in `notes`.

Privacy: only pixels leave this module, with the file's sha256 and the notes. No DICOM element
other than the pixel module's is read into a result or a message (no patient or study
identifiers, no UIDs, no file names), and pydicom's own messages are not passed on since they
may quote element values. Nothing is written to disk.
"""

import hashlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from pipelines.core.errors import MedEditError
from pipelines.core.limits import MAX_UPLOAD_BYTES
from pipelines.data.decoding import (DECODE_ERRORS, check_decoded_bytes, check_pixels, grey_by_rows, rgb_by_rows,
                                     row_blocks)
from pipelines.data.dicom_upload import read_dicom

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
EXIF_ORIENTATION = 0x0112
DICOM_MAGIC_AT = 128  # a DICOM Part 10 file: a 128-byte preamble, then "DICM"
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def pillow_bytes_per_pixel(mode: str) -> int:
    """What Pillow holds a decoded pixel in: one byte for 1, L and P, two for 16-bit grey, four for
    the rest (multi-band 8-bit images are stored 32 bits a pixel, as are I and F)."""
    return 1 if mode in ("1", "L", "P") else 2 if mode in SIXTEEN_BIT else 4
@dataclass
class Decoded:
    """An uploaded image at the file's own size."""

    pixels: np.ndarray  # [H, W, 3] uint8
    sha256: str  # of the file's bytes: the only thing of the file an export records
    kind: str  # "PNG", "JPEG" or "DICOM"
    notes: list[str] = field(default_factory=list)
    burned_in: bool = False  # a DICOM whose pixels may show identifying text, accepted knowingly


@dataclass
class Upload:
    """An uploaded image at the model's size, ready to invert."""

    image: np.ndarray  # [size, size, 3] uint8
    sha256: str
    kind: str
    notes: list[str] = field(default_factory=list)
    source_size: tuple[int, int] = (0, 0)  # (width, height) of the file's image
    burned_in: bool = False


# --- reading ------------------------------------------------------------------------------------

def file_bytes(source, what: str = "image") -> bytes:
    """The bytes of a path or of bytes given, refused past MAX_UPLOAD_BYTES (a path is checked
    before it is read)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise MedEditError(f"the {what} file {path} does not exist" if not path.exists()
                               else f"the {what} {path} is not a file")
        size = path.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            raise MedEditError(too_large(size, what))
        try:
            data = path.read_bytes()
        except OSError as error:
            raise MedEditError(f"cannot read the {what} file {path}: {error.strerror}") from None
    if len(data) > MAX_UPLOAD_BYTES:
        raise MedEditError(too_large(len(data), what))
    if not data:
        raise MedEditError(f"the {what} file is empty")
    return data


def too_large(size: int, what: str) -> str:
    return (f"the {what} file is {size / 2**20:.1f} MiB; at most {MAX_UPLOAD_BYTES / 2**20:.0f} MiB "
            "is accepted")


def sniff(data: bytes) -> str:
    if data.startswith(PNG_SIGNATURE):
        return "PNG"
    if data.startswith(JPEG_SIGNATURE):
        return "JPEG"
    if data[DICOM_MAGIC_AT:DICOM_MAGIC_AT + 4] == b"DICM":
        return "DICOM"
    raise MedEditError("not a PNG, JPEG or DICOM file (DICOM needs its 128-byte preamble and 'DICM')")


def read_image(source, allow_burned_in: bool = False) -> Decoded:
    """A PNG, JPEG or DICOM file (a path or its bytes) as [H, W, 3] uint8 pixels, with notes. A
    DICOM whose pixels may show identifying text is refused unless `allow_burned_in`."""
    data = file_bytes(source)
    kind = sniff(data)
    digest = hashlib.sha256(data).hexdigest()
    burned_in = False
    if kind == "DICOM":
        pixels, notes, burned_in = read_dicom(data, allow_burned_in)
    else:
        pixels, notes = read_pillow(data, kind)
    return Decoded(pixels, digest, kind, notes, burned_in)


def open_pillow(data: bytes, kind: str, what: str = "image") -> Image.Image:
    """The decoded first frame, its size checked from the header before decoding."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[kind])
            check_pixels(*image.size, what)
            check_decoded_bytes(*image.size, pillow_bytes_per_pixel(image.mode), what)
            frames = getattr(image, "n_frames", 1)
            image.load()
    except MedEditError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise MedEditError(f"the {what} is too large to decode, refused before decoding ({error})") from None
    except DECODE_ERRORS as error:
        raise MedEditError(f"the {kind} {what} is corrupt or truncated ({type(error).__name__}: "
                           f"{str(error)[:120]})") from None
    image.info["mededit_frames"] = frames
    return image


def read_pillow(data: bytes, kind: str) -> tuple[np.ndarray, list[str]]:
    image = open_pillow(data, kind)
    notes = []
    if image.info["mededit_frames"] > 1:
        notes.append(f"the file holds {image.info['mededit_frames']} frames; the first is used")
    if image.getexif().get(EXIF_ORIENTATION, 1) not in (0, 1):
        image = ImageOps.exif_transpose(image)
        notes.append("turned upright as its EXIF orientation says")
    return pillow_to_rgb(image, notes), notes


def pillow_block(image: Image.Image, rows: slice, mode: str | None = None) -> np.ndarray:
    """Those rows of the image as an array (converted to `mode` when given)."""
    part = image.crop((0, rows.start, image.size[0], rows.stop))
    return np.asarray(part if mode is None or part.mode == mode else part.convert(mode))


def pillow_to_rgb(image: Image.Image, notes: list[str]) -> np.ndarray:
    """[H, W, 3] uint8 from any mode Pillow opens PNG and JPEG files in, a block of rows at a time
    (decoding.py): no copy of the whole image is made but the result."""
    width, height = image.size

    def block(rows: slice, mode: str | None = None) -> np.ndarray:
        return pillow_block(image, rows, mode)

    if image.mode in SIXTEEN_BIT + ("I", "F"):
        unit_of = scale_to_unit(image.getextrema(), image.mode, notes)
        return grey_by_rows(height, width, lambda rows: unit_of(block(rows)))
    if "A" in image.mode or "transparency" in image.info:
        transparent = []

        def flattened(rows: slice) -> np.ndarray:
            rgba = block(rows, "RGBA")
            transparent.append(rgba[..., 3].min() < 255)
            return np.round(rgba[..., :3].astype(np.float64) * (rgba[..., 3:] / 255.0)).astype(np.uint8)

        rgb = rgb_by_rows(height, width, flattened)
        if any(transparent):
            notes.append("transparent parts flattened onto black")
        return rgb
    if image.mode in ("1", "L"):
        return rgb_by_rows(height, width, lambda rows: np.repeat(block(rows, "L")[..., None], 3, axis=2))
    if image.mode not in ("P", "RGB"):
        notes.append(f"converted from {image.mode} to RGB")
    return rgb_by_rows(height, width, lambda rows: block(rows, "RGB"))


def scale_to_unit(extrema: tuple, mode: str, notes: list[str]):
    """How 16-bit or float grey goes to [0, 1] (a function of a block of its values), from its
    (min, max): 16-bit by its full range, unless it uses 12 bits or fewer (then by its own range,
    or it would look black); float always by its own range."""
    low, high = float(extrema[0]), float(extrema[1])
    if mode != "F" and low >= 0 and high >= 4096:
        notes.append("16-bit grey scaled to 8 bits over the full 16-bit range")
        return lambda values: values.astype(np.float64) / 65535.0
    notes.append(f"{'floating-point' if mode == 'F' else '16-bit'} grey scaled to 8 bits from its own "
                 f"range {low:g}..{high:g}")
    if high <= low:
        return lambda values: np.zeros(values.shape, np.float64)
    return lambda values: (values.astype(np.float64) - low) / (high - low)


def as_rgb_array(image) -> np.ndarray:
    """[H, W, 3] uint8 from a uint8 array of grey, RGB or RGBA (transparency onto black)."""
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise MedEditError(f"an image to edit must be an [H, W], [H, W, 3] or [H, W, 4] uint8 array, "
                           f"got shape {a.shape} dtype {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 3:
        return a
    a = a[..., 0] if a.ndim == 3 and a.shape[2] == 1 else a
    return pillow_to_rgb(Image.fromarray(np.ascontiguousarray(a)), [])


# --- fitting to the model ------------------------------------------------------------------------

def fit(decoded: Decoded, size: int) -> Upload:
    """The image resized (shorter side to `size`) and centre-cropped to size x size."""
    image, notes = fit_pixels(decoded.pixels, size)
    height, width = decoded.pixels.shape[:2]
    return Upload(image, decoded.sha256, decoded.kind, decoded.notes + notes, (width, height), decoded.burned_in)


def fit_geometry(width: int, height: int, size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(resized width, height) and the crop's (left, top)."""
    scale = size / min(width, height)
    resized = (max(size, round(width * scale)), max(size, round(height * scale)))
    return resized, ((resized[0] - size) // 2, (resized[1] - size) // 2)


def fit_pixels(pixels: np.ndarray, size: int) -> tuple[np.ndarray, list[str]]:
    height, width = pixels.shape[:2]
    if (height, width) == (size, size):
        return pixels, []
    (w, h), (left, top) = fit_geometry(width, height, size)
    if (w, h) == (width, height):
        note, resized = f"centre-cropped from {width}x{height} to {size}x{size}", pixels
    else:
        # Box filter when shrinking (area average: thin strokes stay, no aliasing), bicubic to enlarge.
        resample = Image.Resampling.BOX if w <= width else Image.Resampling.BICUBIC
        resized = np.asarray(Image.fromarray(pixels).resize((w, h), resample))
        note = f"resized from {width}x{height} to {w}x{h}"
        if (w, h) != (size, size):
            note += f" and centre-cropped to {size}x{size}"
    return np.ascontiguousarray(resized[top:top + size, left:left + size]), [note]


def fit_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A [H, W] bool mask through the same resize and crop as its image: True where at least half
    of a model pixel's area was painted."""
    height, width = mask.shape
    if (height, width) == (size, size):
        return mask.copy()
    (w, h), (left, top) = fit_geometry(width, height, size)
    resample = Image.Resampling.BOX if w <= width else Image.Resampling.BILINEAR
    grey = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((w, h), resample))
    return grey[top:top + size, left:left + size] >= 128


def read_mask(source, what: str = "mask") -> np.ndarray:
    """A mask file (PNG or JPEG), [H, W] bool: painted where opaque if it has transparency, else
    where bright. It is fitted with its image (fit_mask), so it must have the image's size or the
    model's (MedEditPipeline checks)."""
    data = file_bytes(source, what)
    kind = sniff(data)
    if kind == "DICOM":
        raise MedEditError(f"the {what} must be a PNG or JPEG image, not DICOM")
    image = open_pillow(data, kind, what)
    width, height = image.size
    mask = np.empty((height, width), bool)
    if "A" in image.mode or "transparency" in image.info:
        alpha = np.empty((height, width), np.uint8)
        for rows in row_blocks(height, width):  # a block at a time: no whole RGBA copy
            alpha[rows] = pillow_block(image, rows, "RGBA")[..., 3]
        if alpha.min() < 255:
            return np.greater_equal(alpha, 128, out=mask)
        del alpha
    for rows in row_blocks(height, width):
        mask[rows] = pillow_block(image, rows, "L") >= 128
    return mask
