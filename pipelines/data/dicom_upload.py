"""A DICOM upload through pydicom: the image pixel module and nothing else of the file (but the
few elements that say whether its pixels may show identifying text: burned_in.py).

The first frame is decoded (a multi-frame file says so in a note), after its size is checked
against MAX_UPLOAD_PIXELS and its transfer syntax against the decoders installed. Grey images go
through the modality LUT (rescale slope and intercept), then the VOI LUT or the first window (or,
with neither, their own range), and MONOCHROME1 is inverted so that bright means dense, as on
MONOCHROME2. Colour images (RGB, YBR converted by pydicom, palette colour) are scaled by their bit
depth. No message quotes pydicom's own, since those may quote element values: its warnings are
caught (a note counts them) and its log goes nowhere.

A compressed frame's own header (dicom_frames.py) is read before decoding: a frame larger than the
DICOM header says, or a 12-bit JPEG with only Pillow (8-bit JPEG) to decode it, is refused by name.
"""

import io
import logging
import struct
import warnings
import zlib

import numpy as np
from pydicom import dcmread
from pydicom import pixels as dicom_pixels
from pydicom.uid import UID

from pipelines.core.errors import MedEditError
from pipelines.core.limits import MAX_UPLOAD_BYTES
from pipelines.data.burned_in import check_burned_in
from pipelines.data.decoding import (DECODE_ERRORS, check_decoded_bytes, check_pixels, grey_by_rows, rgb_by_rows,
                                     row_blocks)
from pipelines.data.dicom_frames import JPEG_FAMILY, frame_geometry

PIXEL_DATA_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
GREY = ("MONOCHROME1", "MONOCHROME2")
COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420")
PILLOW_JPEG_BITS = 8  # Pillow, pydicom's fallback JPEG decoder, reads 8-bit JPEG only
DEFLATED = b"1.2.840.10008.1.2.1.99"  # Deflated Explicit VR Little Endian: the whole dataset is deflated
META_AT = 132  # the file meta group starts after the preamble and "DICM"

# pydicom logs what it warns, and its messages may quote element values: they reach no log.
_pydicom_log = logging.getLogger("pydicom")
_pydicom_log.addHandler(logging.NullHandler())
_pydicom_log.propagate = False


def read_dicom(data: bytes, allow_burned_in: bool = False) -> tuple[np.ndarray, list[str], bool]:
    """[H, W, 3] uint8 of the first frame, with notes on what was done to it, and whether its
    pixels may show burned-in text (refused unless `allow_burned_in`: burned_in.py); pydicom's
    warnings (a header it had to correct) become one note."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pixels, notes, burned_in = read_dicom_quietly(data, allow_burned_in)
    if caught:
        notes.append(f"the DICOM reader corrected {len(caught)} deviation(s) from the standard in the file")
    return pixels, notes, burned_in


def read_dicom_quietly(data: bytes, allow_burned_in: bool) -> tuple[np.ndarray, list[str], bool]:
    check_inflated_size(data)
    try:
        ds = dcmread(io.BytesIO(data), force=False)
    except Exception as error:  # pydicom raises many kinds on a damaged header
        raise MedEditError(f"the DICOM file is corrupt or truncated: its header cannot be read "
                           f"({type(error).__name__})") from None
    syntax = transfer_syntax(ds)
    if not any(tag in ds for tag in PIXEL_DATA_TAGS):
        raise MedEditError("the DICOM file holds no image (no pixel data): a report, a structured "
                           "document, or a file cut short before its pixels")
    if "PixelData" not in ds:
        raise MedEditError("the DICOM file holds floating-point pixel data (a parametric map); "
                           "only integer images are supported")
    burned_in = check_burned_in(ds, allow_burned_in)
    rows, columns, frames, photometric = pixel_module(ds)
    check_pixels(columns, rows, "DICOM frame")
    check_decoded_bytes(columns, rows, decoded_bytes_per_pixel(ds), "DICOM frame")
    notes = [f"the DICOM file holds {frames} frames; the first is used"] if frames > 1 else []
    if burned_in:
        notes.append(f"accepted although its pixels may show identifying text ({burned_in}); every output "
                     "says so (BurnedInAnnotation YES)")
    if syntax.is_compressed:
        check_decoder(syntax)
        check_frame_header(ds, syntax, rows, columns, frames)
    else:
        check_length(ds, rows, columns, frames)
    try:
        frame = dicom_pixels.pixel_array(ds, index=0)
        return to_rgb(frame, ds, photometric, notes), notes, burned_in is not None
    except MedEditError:
        raise
    except DECODE_ERRORS as error:
        if syntax.is_compressed:
            raise MedEditError(f"the DICOM image is compressed as {syntax.name}, and the installed decoder "
                               f"({', '.join(decoder_plugins(syntax))}) cannot decode it ({type(error).__name__}): "
                               "it is corrupt, or needs pylibjpeg or GDCM; or convert it to PNG") from None
        raise MedEditError(f"the DICOM file's pixel data cannot be decoded: it is corrupt or "
                           f"truncated ({type(error).__name__})") from None


def decoded_bytes_per_pixel(ds) -> int:
    """What pydicom's decoded frame holds a pixel in: samples x whole bytes allocated."""
    return int(ds.SamplesPerPixel) * ((int(ds.BitsAllocated) + 7) // 8)


def check_inflated_size(data: bytes) -> None:
    """pydicom inflates a deflated dataset whole, and a 1 MB file can hold gigabytes of zeros: it is
    inflated here first, at most MAX_UPLOAD_BYTES of it (what an uncompressed file may hold)."""
    if data[META_AT:META_AT + 4] == b"\x02\x00\x00\x00" and data[META_AT + 4:META_AT + 6] == b"UL":
        meta_end = META_AT + 12 + struct.unpack("<I", data[META_AT + 8:META_AT + 12])[0]
    else:  # no group length: the transfer syntax is near the start, or pydicom refuses the header
        meta_end = META_AT + 1024
    if DEFLATED not in data[META_AT:meta_end]:
        return
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        inflater.decompress(data[meta_end:], MAX_UPLOAD_BYTES)
    except zlib.error:
        raise MedEditError("the DICOM file is deflated, and its deflated data is corrupt or truncated") from None
    if inflater.unconsumed_tail:
        raise MedEditError(f"the DICOM file is deflated, and inflates to more than {MAX_UPLOAD_BYTES / 2**20:.0f} "
                           "MiB: refused before inflating it")


def pixel_module(ds) -> tuple[int, int, int, str]:
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        photometric = str(ds.PhotometricInterpretation).strip().upper()
        int(ds.BitsAllocated), int(ds.BitsStored), int(ds.SamplesPerPixel)
    except Exception as error:  # a damaged pixel module raises many kinds
        raise MedEditError(f"the DICOM file's image description is missing or damaged (rows, "
                           f"columns, bits or photometric interpretation; {type(error).__name__})") from None
    if frames < 1:
        raise MedEditError(f"the DICOM file says it holds {frames} frames")
    if photometric not in GREY + COLOUR + ("PALETTE COLOR",):
        raise MedEditError(f"DICOM photometric interpretation {photometric!r} is not supported; "
                           f"supported: {', '.join(GREY + COLOUR)}, PALETTE COLOR")
    return rows, columns, frames, photometric


def transfer_syntax(ds) -> UID:
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None:
        raise MedEditError("the DICOM file is corrupt or truncated: its file meta information names "
                           "no transfer syntax")
    return UID(syntax)


def check_decoder(syntax: UID) -> None:
    """A compressed transfer syntax needs a decoder that is installed (pylibjpeg, GDCM, ...)."""
    name = syntax.name if syntax.is_transfer_syntax else "an unknown transfer syntax"
    try:
        available = dicom_pixels.get_decoder(syntax).is_available
    except (NotImplementedError, ValueError, KeyError):
        available = False
    if not available:
        raise MedEditError(f"the DICOM image is compressed as {name}, and no decoder for it is "
                           "installed (pylibjpeg or GDCM); export it uncompressed, or as PNG")


def decoder_plugins(syntax: UID) -> tuple[str, ...]:
    try:
        return tuple(dicom_pixels.get_decoder(syntax).available_plugins)
    except (NotImplementedError, ValueError, KeyError):
        return ()


def check_frame_header(ds, syntax: UID, rows: int, columns: int, frames: int) -> None:
    """The first compressed frame's own size must be the header's (or decoding would expand what
    the header hides), and a JPEG's precision one an installed decoder reads."""
    geometry = frame_geometry(ds.PixelData, syntax, frames)
    if geometry is None:
        return
    if (geometry.columns, geometry.rows) != (columns, rows):
        raise MedEditError(f"the DICOM header says {columns}x{rows}, its pixel data is "
                           f"{geometry.columns}x{geometry.rows}: the file is inconsistent (refused before decoding)")
    pillow_only = set(decoder_plugins(syntax)) <= {"pillow"}
    if syntax in JPEG_FAMILY and geometry.precision > PILLOW_JPEG_BITS and pillow_only:
        kind = syntax.name.split(" (")[0]
        raise MedEditError(f"the DICOM image is compressed with {kind} ({geometry.precision}-bit), which no "
                           "installed decoder reads; install pylibjpeg (pip install pylibjpeg "
                           "pylibjpeg-libjpeg) or convert to PNG")


def check_length(ds, rows: int, columns: int, frames: int) -> None:
    """Uncompressed pixel data must be as long as the header says: shorter, the file is truncated;
    longer (past the one byte that pads it to even), the header does not describe it."""
    bits = int(ds.BitsAllocated) * int(ds.SamplesPerPixel)
    needed = (rows * columns * frames * bits + 7) // 8
    held = len(ds.PixelData)
    if held < needed:
        raise MedEditError(f"the DICOM file is truncated: its pixel data holds {held} of the "
                           f"{needed} bytes its header describes")
    if held > needed + needed % 2:
        raise MedEditError(f"the DICOM header says {columns}x{rows} ({frames} frame(s) of {bits} bits: "
                           f"{needed} bytes), its pixel data holds {held} bytes: the file is inconsistent")


def to_rgb(frame: np.ndarray, ds, photometric: str, notes: list[str]) -> np.ndarray:
    """[H, W, 3] uint8; every step is per pixel, so it runs a block of rows at a time (decoding.py)."""
    height, width = frame.shape[:2]
    if photometric == "PALETTE COLOR":
        depth = int(ds.RedPaletteColorLookupTableDescriptor[2])
        notes.append("palette colour turned to RGB")
        return rgb_by_rows(height, width, lambda rows: np.round(np.clip(
            dicom_pixels.apply_color_lut(frame[rows], ds) / (2**depth - 1), 0, 1) * 255).astype(np.uint8))
    if photometric in COLOUR:
        scale = 2 ** int(ds.BitsStored) - 1
        if scale != 255:
            notes.append(f"{int(ds.BitsStored)}-bit colour scaled to 8 bits")
        return rgb_by_rows(height, width, lambda rows: np.round(
            np.clip(frame[rows].astype(np.float64) / scale, 0, 1) * 255).astype(np.uint8))
    unit_of = grey_unit_of(frame, ds, notes)
    if photometric == "MONOCHROME1":
        notes.append("MONOCHROME1 inverted so that bright means dense")
        return grey_by_rows(height, width, lambda rows: 1.0 - unit_of(rows))
    return grey_by_rows(height, width, unit_of)


def grey_unit_of(frame: np.ndarray, ds, notes: list[str]):
    """Stored values -> modality values (rescale or modality LUT) -> [0, 1] by the VOI LUT, the
    first window, or the image's own range: a function of a block of rows."""
    def modality(rows: slice) -> np.ndarray:
        return dicom_pixels.apply_modality_lut(frame[rows], ds).astype(np.float64)

    slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    if "ModalityLUTSequence" in ds:
        notes.append("modality LUT applied")
    elif (slope, intercept) != (1.0, 0.0):
        notes.append(f"rescale slope {slope:g} and intercept {intercept:g} applied")
    if "VOILUTSequence" in ds:
        top = 2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1
        notes.append("the file's VOI LUT applied")
        return lambda rows: np.clip(dicom_pixels.apply_voi(modality(rows), ds, index=0) / top, 0, 1)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        low, high = window_output_range(ds)
        center, width = first(ds["WindowCenter"]), first(ds["WindowWidth"])
        count = ds["WindowCenter"].VM
        notes.append(f"window centre {center:g}, width {width:g} applied"
                     + (f" (the first of {count})" if count > 1 else ""))
        return lambda rows: np.clip((dicom_pixels.apply_windowing(modality(rows), ds, index=0) - low)
                                    / (high - low), 0, 1)
    ranges = [(float(block.min()), float(block.max())) for block in map(modality, row_blocks(*frame.shape[:2]))]
    low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
    notes.append(f"no window in the file: grey scaled from its own range {low:g}..{high:g}")
    if high <= low:
        return lambda rows: np.zeros(frame[rows].shape[:2], np.float64)
    return lambda rows: (modality(rows) - low) / (high - low)


def first(element) -> float:
    return float(element.value[0] if element.VM > 1 else element.value)


def window_output_range(ds) -> tuple[float, float]:
    """The range pydicom's apply_windowing maps a window onto (PS3.3 C.11.2.1.2)."""
    bits = int(ds.BitsStored)
    if ds.get("ModalityLUTSequence"):
        low, high = 0.0, 2.0 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1
    elif int(ds.PixelRepresentation) == 0:
        low, high = 0.0, 2.0**bits - 1
    else:
        low, high = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    if ds.get("RescaleSlope") is not None and ds.get("RescaleIntercept") is not None:
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        low, high = low * slope + intercept, high * slope + intercept
    if high == low:
        raise MedEditError("the DICOM window maps onto an empty range")
    return low, high
