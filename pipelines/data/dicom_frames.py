"""What a compressed DICOM frame says of itself, read from its codestream's header before decoding.

A DICOM header can lie: Rows and Columns may say 64x64 while the JPEG inside is 20000x20000, and
a decoder would expand the frame before anyone compares. So the first frame's own header (a JPEG
or JPEG-LS SOF marker, a JPEG 2000 SIZ marker) is read first: its size must be the header's, and
its sample precision must be one an installed decoder reads (Pillow reads 8-bit JPEG only).

    geometry = frame_geometry(ds.PixelData, syntax, frames)   # FrameGeometry, or None for RLE etc.
"""

import struct
from dataclasses import dataclass

from pydicom.encaps import get_frame
from pydicom.uid import JPEG2000TransferSyntaxes, JPEGLSTransferSyntaxes, JPEGTransferSyntaxes, UID

from pipelines.core.errors import MedEditError

# JPEG start-of-frame markers (ITU T.81 B.1.1.3: C0-CF but DHT C4, JPG C8, DAC CC) and JPEG-LS's (F7)
SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
JPEG_FAMILY = set(JPEGTransferSyntaxes) | set(JPEGLSTransferSyntaxes)
J2K_SOC, J2K_SIZ = b"\xff\x4f", 0xFF51
HEADER_BYTES = 1 << 16  # a frame header lies within its first bytes (after APPn/COM segments)


@dataclass(frozen=True)
class FrameGeometry:
    columns: int
    rows: int
    precision: int  # bits per sample the codestream holds
    components: int


def frame_geometry(pixel_data: bytes, syntax: UID, frames: int) -> FrameGeometry | None:
    """The first frame's size and precision from its codestream, or None for a syntax whose
    stream holds no size (RLE, deflate, video)."""
    if syntax not in JPEG_FAMILY and syntax not in JPEG2000TransferSyntaxes:
        return None
    try:
        head = get_frame(pixel_data, 0, number_of_frames=frames)[:HEADER_BYTES]
    except Exception as error:  # pydicom raises many kinds on damaged encapsulation
        raise MedEditError(f"the DICOM file's compressed pixel data is corrupt or truncated: its "
                           f"frames cannot be found ({type(error).__name__})") from None
    found = jpeg_geometry(head) if syntax in JPEG_FAMILY else j2k_geometry(head)
    if found is None:
        raise MedEditError(f"the DICOM file's pixel data is not a {syntax.name} codestream "
                           "(no frame header found): it is corrupt or mislabelled")
    return found


def jpeg_geometry(head: bytes) -> FrameGeometry | None:
    """Walk the marker segments up to the first SOF: P (1 byte), Y (2), X (2), Nf (1)."""
    at = head.find(b"\xff\xd8")
    if at < 0:
        return None
    at += 2
    while at + 4 <= len(head):
        if head[at] != 0xFF:
            return None
        marker = head[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        length = struct.unpack(">H", head[at + 2:at + 4])[0]
        if marker in SOF_MARKERS:
            if at + 10 > len(head):
                return None
            precision, rows, columns, components = struct.unpack(">BHHB", head[at + 4:at + 10])
            return FrameGeometry(columns, rows, precision, components)
        if marker == 0xDA or length < 2:  # scan data before any frame header: not a valid stream
            return None
        at += 2 + length
    return None


def j2k_geometry(head: bytes) -> FrameGeometry | None:
    """SIZ follows SOC (ISO 15444-1 A.5.1): Xsiz, Ysiz, XOsiz, YOsiz give the image area; Ssiz the
    depth of each component."""
    at = head.find(J2K_SOC)
    if at < 0 or at + 44 > len(head) or struct.unpack(">H", head[at + 2:at + 4])[0] != J2K_SIZ:
        return None
    xsiz, ysiz, xosiz, yosiz = struct.unpack(">IIII", head[at + 8:at + 24])
    components = struct.unpack(">H", head[at + 40:at + 42])[0]
    depth = (head[at + 42] & 0x7F) + 1 if at + 42 < len(head) else 0
    return FrameGeometry(xsiz - xosiz, ysiz - yosiz, depth, components)
