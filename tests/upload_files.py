"""Files a user might upload, made with the real writers (Pillow, pydicom): good ones and hostile ones."""

import io

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import (ExplicitVRLittleEndian, JPEGLSLossless, SecondaryCaptureImageStorage,
                         generate_uid)

# Identifiers a test DICOM carries: none may reach an output, a log or a file name.
PATIENT_NAME = "Doe^Jane^Secretname"
PATIENT_ID = "PID-77341-SECRET"
ACCESSION = "ACC-99120-SECRET"
INSTITUTION = "Hidden Valley Hospital"
BIRTH_DATE = "19610423"


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(array: np.ndarray, quality: int = 95, exif=None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality, **({"exif": exif} if exif else {}))
    return buffer.getvalue()


def dicom_dataset(stored: np.ndarray, photometric: str = "MONOCHROME2", bits: int = 12,
                  frames: int = 1, **elements) -> FileDataset:
    """A Secondary Capture holding `stored` ([H, W] or [F, H, W] unsigned ints), uncompressed, with
    patient and study identifiers that must never come out."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = PATIENT_NAME, PATIENT_ID, BIRTH_DATE
    ds.AccessionNumber, ds.InstitutionName, ds.Modality = ACCESSION, INSTITUTION, "OT"
    ds.Rows, ds.Columns = stored.shape[-2:]
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits, bits - 1, 0
    ds.PixelData = stored.astype("<u2").tobytes()
    for key, value in elements.items():
        setattr(ds, key, value)
    return ds


def dicom_bytes(ds: FileDataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def identifiers(ds: FileDataset) -> list[str]:
    """Every identifying value the dataset holds, as text to search outputs for."""
    return [PATIENT_NAME, "Secretname", PATIENT_ID, ACCESSION, INSTITUTION, BIRTH_DATE,
            str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)]


def jpeg_ls_dicom(stored: np.ndarray) -> bytes:
    """A DICOM that says its pixel data is JPEG-LS (no decoder for it is installed here)."""
    ds = dicom_dataset(stored)
    ds.file_meta.TransferSyntaxUID = JPEGLSLossless
    from pydicom.encaps import encapsulate
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xf7" + b"\0" * 64])
    ds["PixelData"].VR = "OB"
    return dicom_bytes(ds)


def report_dicom() -> bytes:
    """A DICOM without pixel data (a structured report, say)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID = PATIENT_NAME, PATIENT_ID
    return dicom_bytes(ds)


def png_bomb(width: int = 30_000, height: int = 30_000, colour: int = 0) -> bytes:
    """A tiny PNG whose header claims a huge image (the body is a few zero rows: it would expand
    to width x height pixels if decoded); colour: the PNG colour type (0 grey, 6 RGBA; 8 bits)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    rows = zlib.compress(b"\0" * (width * {0: 1, 2: 3, 6: 4}[colour] + 1) * 16, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def jpeg_bomb(width: int = 9000, height: int = 9000) -> bytes:
    """A small JPEG whose frame header (SOF0) claims width x height."""
    data = bytearray(jpeg_bytes(np.zeros((16, 16, 3), np.uint8)))
    at = data.find(b"\xff\xc0")  # SOF0: marker, length (2), precision (1), height (2), width (2)
    data[at + 5:at + 7], data[at + 7:at + 9] = height.to_bytes(2, "big"), width.to_bytes(2, "big")
    return bytes(data)


def encapsulated_dicom(codestream: bytes, syntax, rows: int, columns: int) -> bytes:
    """An 8-bit grey DICOM whose header says rows x columns, holding one compressed frame as given
    (whose own header may say another size)."""
    from pydicom.encaps import encapsulate
    ds = dicom_dataset(np.zeros((rows, columns), np.uint16), bits=8)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = encapsulate([codestream])
    ds["PixelData"].VR = "OB"
    return dicom_bytes(ds)


def pillow_codestream(width: int, height: int, format: str) -> bytes:
    """A grey JPEG or JPEG 2000 codestream of width x height (all black: small whatever its size)."""
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format=format)
    return buffer.getvalue()


def jpeg_extended_12_bit_dicom() -> bytes:
    """A valid 12-bit JPEG Extended (process 4) DICOM: pydicom's own test file, which Pillow cannot
    decode (8-bit JPEG only)."""
    from pydicom.data import get_testdata_file
    with open(get_testdata_file("JPEG-lossy.dcm", download=False), "rb") as f:
        return f.read()


def deflated_dicom(padding: int = 0) -> bytes:
    """An 8x8 DICOM in Deflated Explicit VR Little Endian, its dataset followed by `padding` zero
    bytes of Data Set Trailing Padding (FFFC,FFFC): a small file that inflates to that much."""
    import struct
    import zlib

    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian
    plain = dicom_dataset(np.arange(64, dtype=np.uint16).reshape(8, 8))
    raw = dicom_bytes(plain)
    body = raw[144 + struct.unpack("<I", raw[140:144])[0]:]  # after the file meta group
    plain.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    meta = DicomBytesIO()
    meta.is_little_endian, meta.is_implicit_VR = True, False
    write_file_meta_info(meta, plain.file_meta, enforce_standard=True)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [deflater.compress(body)]
    if padding:
        parts.append(deflater.compress(struct.pack("<HH2sHI", 0xFFFC, 0xFFFC, b"OB", 0, padding)))
        chunk = bytes(1 << 20)
        for start in range(0, padding, len(chunk)):
            parts.append(deflater.compress(chunk[:min(len(chunk), padding - start)]))
    parts.append(deflater.flush())
    return b"\0" * 128 + b"DICM" + meta.getvalue() + b"".join(parts)
