"""A series of edited frames as DICOM Secondary Capture files that any viewer opens.

Secondary Capture (1.2.840.10008.5.1.4.1.1.7) is the IOD for images no acquisition device made.
Modality is "OT" (other) for both worlds on purpose: "DX" or "XC" would claim an X-ray detector or
an external camera acquired the image. Every file is a new instance of a new study and series
(UIDs generated here). What the pixels are depends on the provenance's source:
- generated: ConversionType "SYN" (synthetic); the patient is a fixed anonymous phantom; the
  descriptions say "synthetic image, not a patient" (SYNTHETIC_MARK).
- upload (an image the user brought, edited by a model): ConversionType "WSD" (made on a
  workstation); the patient is an anonymous placeholder that says nothing of the source, whose
  elements are never read into the file (only its sha256 travels, in the provenance); the
  descriptions say EDITED_MARK, never "synthetic". BurnedInAnnotation is left out: what the
  upload's pixels show is not known here, so "NO" would be a claim this file cannot make; it is
  "YES" when the source may show identifying text and was accepted knowingly (data/burned_in.py).
The provenance (prompts, seed, swap point, model id and revision) travels as JSON in
ImageComments, a standard (non-private) attribute.

Chest X-rays are stored as 8-bit MONOCHROME2, dermoscopy as 8-bit RGB (interleaved), both
uncompressed Explicit VR Little Endian, so pixel_array reads back exactly the input pixels. Every
file passes dicom3tools' dciodvfy without an error or a warning (tests/test_dicom.py runs it).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from PIL import Image
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

from pipelines.core.errors import MedEditError
from pipelines.core.limits import EDITED_MARK, SOFTWARE, SYNTHETIC_MARK
from pipelines.data.burned_in import BURNED_IN_KEY
from pipelines.export.images import check_frames
from pipelines.export.provenance import Provenance, provenance_record, to_json
from pipelines.export.settings_text import setting_phrases

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
MODALITY = "OT"


@dataclass(frozen=True)
class Identity:
    """What a file says of its patient and its making, by Provenance.source."""
    patient_name: str  # PN
    patient_id: str  # LO
    conversion_type: str  # CS, a defined term of the SC Equipment module
    description: str  # LO: at most 64 characters (study and series description)
    burned_in_annotation: str | None  # CS; None: not known, left out (type 3)


IDENTITIES = {
    "generated": Identity("SYNTHETIC^PHANTOM", "SYNTHETIC", "SYN", f"{SOFTWARE} {SYNTHETIC_MARK}", "NO"),
    "upload": Identity("ANONYMOUS^EDITED", "EDITED", "WSD", f"{SOFTWARE} {EDITED_MARK}", None),
}

# Where the image is: Body Part Examined takes defined terms only (PS3.16 Annex L) and "SKIN" is
# none, so dermoscopy says it with a code instead (Anatomic Region Sequence, SNOMED CT), as CXR does
# beside CHEST. The phantom's skin lies at no named site: the region is the skin as a whole, an
# unpaired structure, so Image Laterality is "U" and Laterality (paired structures, type 2C) is absent.
BODY_PART = {"cxr": "CHEST"}
ANATOMIC_REGION = {"cxr": ("51185008", "Chest"), "dermoscopy": ("39937001", "Skin structure")}
IMAGE_LATERALITY = {"dermoscopy": "U"}
IMPLEMENTATION_VERSION = "MEDEDIT_1"  # SH: at most 16 characters


def _lo(text: str) -> str:
    """Long String: at most 64 characters, no backslash (it separates values)."""
    return str(text).replace("\\", "/")[:64]


def _pixels(frame: Image.Image, modality: str) -> tuple[np.ndarray, str]:
    if modality == "cxr":
        return np.asarray(frame.convert("L"), dtype=np.uint8), "MONOCHROME2"
    return np.ascontiguousarray(np.asarray(frame.convert("RGB"), dtype=np.uint8)), "RGB"


def _code(value: str, meaning: str, scheme: str = "SCT") -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _derivation(p: Provenance) -> str:
    """What made the image, in words, with IPTC's digital source type (the URI the PNG's XMP has)."""
    made = "generated" if p.source == "generated" else "an uploaded image edited"
    # The settings before the prompts: a cut at 1024 characters then takes only prompt text, which
    # ImageComments holds whole.
    text = "; ".join([f"{p.mark}", f"IPTC digital source type {p.digital_source_type}",
                      f"{made} by {p.model_id}@{p.model_revision}",
                      f"seed {p.seed}, swap at {p.swap_at}, {p.steps} steps", *setting_phrases(p.as_dict()),
                      f"anatomy '{p.anatomy}' -> '{p.to_anatomy}', style '{p.style}' -> '{p.to_style}'"])
    return text.encode("ascii", "replace").decode("ascii").replace("\\", "/")[:1024]  # ST: 1024 chars


def _instance(pixels: np.ndarray, photometric: str, p: Provenance, extra: dict, number: int,
              study_uid: str, series_uid: str, when: datetime) -> Dataset:
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION

    who = IDENTITIES[p.source]
    ds = Dataset()
    ds.file_meta = meta
    date, time = when.strftime("%Y%m%d"), when.strftime("%H%M%S")
    # SOP Common
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    # Patient: anonymous (a phantom, or a placeholder), no birth date or sex (type 2: present, empty)
    ds.PatientName = who.patient_name
    ds.PatientID = who.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    # General Study
    ds.StudyInstanceUID = study_uid
    ds.StudyDate, ds.StudyTime = date, time
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.StudyDescription = who.description
    # General Series
    ds.Modality = MODALITY
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 1
    ds.SeriesDescription = who.description
    if p.modality in BODY_PART:
        ds.BodyPartExamined = BODY_PART[p.modality]
    # General Equipment + SC Equipment: "SYN" = synthetic image, "WSD" = made on a workstation
    ds.Manufacturer = SOFTWARE
    ds.SoftwareVersions = _lo(f"{p.model_id}@{p.model_revision}")
    ds.ConversionType = who.conversion_type
    ds.SecondaryCaptureDeviceManufacturer = SOFTWARE
    ds.SecondaryCaptureDeviceManufacturerModelName = _lo(p.model_id)
    ds.SecondaryCaptureDeviceSoftwareVersions = _lo(p.model_revision)
    # General Image
    ds.InstanceNumber = number
    ds.PatientOrientation = ""
    ds.ContentDate, ds.ContentTime = date, time
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = _derivation(p)
    ds.ImageComments = f"{SOFTWARE}: {p.mark}. " + to_json(provenance_record(p, extra))
    if p.source == "upload" and p.extra.get(BURNED_IN_KEY) == "YES":
        ds.BurnedInAnnotation = "YES"  # the source's pixels may show identifying text: so may these
    elif who.burned_in_annotation is not None:
        ds.BurnedInAnnotation = who.burned_in_annotation
    if p.modality in IMAGE_LATERALITY:
        ds.ImageLaterality = IMAGE_LATERALITY[p.modality]
    ds.AnatomicRegionSequence = [_code(*ANATOMIC_REGION[p.modality])]
    ds.LossyImageCompression = "00"
    # Image Pixel: sets rows, columns, samples, photometric, bits, planar configuration 0
    ds.set_pixel_data(pixels, photometric_interpretation=photometric, bits_stored=8)
    return ds


def dicom_series_bytes(frames, provenance: Provenance, frame_extras: list[dict] | None = None
                       ) -> list[tuple[str, bytes]]:
    """(file name, DICOM Part-10 bytes) for each frame, one study and one series."""
    if not isinstance(provenance, Provenance):
        raise MedEditError("a DICOM series needs a Provenance")
    provenance.validate()
    frames = check_frames(frames)
    if frame_extras is not None and len(frame_extras) != len(frames):
        raise MedEditError(f"{len(frame_extras)} frame extras for {len(frames)} frames")
    study_uid, series_uid, when = generate_uid(), generate_uid(), datetime.now()
    out = []
    for i, frame in enumerate(frames):
        pixels, photometric = _pixels(frame, provenance.modality)
        extra = {"frame": i, **((frame_extras[i] or {}) if frame_extras else {})}
        ds = _instance(pixels, photometric, provenance, extra, i + 1, study_uid, series_uid, when)
        buffer = io.BytesIO()
        dcmwrite(buffer, ds, enforce_file_format=True)  # preamble + DICM + file meta
        out.append((f"frame_{i:03d}.dcm", buffer.getvalue()))
    return out
