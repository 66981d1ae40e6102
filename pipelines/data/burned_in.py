"""DICOM files whose pixels may show text that identifies a patient (burned-in annotation).

Removing DICOM elements does not remove a name drawn into the pixels, and an edit keeps what it
does not change, so such a file is refused unless the caller accepts it knowingly (`--allow-
burned-in`, the API's `allow_burned_in`, the app's "accept burned-in text" box); then every output
says so (settings and provenance "burned_in_annotation": "YES", DICOM BurnedInAnnotation YES, the
XMP description, the export's README).

Refused by default (decided here, said in the README):
- BurnedInAnnotation (0028,0301) is YES;
- BurnedInAnnotation is absent (or neither YES nor NO) and the file is of a kind that usually
  carries text in its pixels: a screen save (ImageType holds SCREEN SAVE), a scanned document
  (Secondary Capture ConversionType SD), or an ultrasound (Modality US: scanners draw the
  patient's name on screen).
A file that says NO is taken at its word. Only these elements' values are read, and none is quoted.
"""

from pipelines.core.errors import MedEditError

BURNED_IN_KEY = "burned_in_annotation"  # the settings' and provenance's key; its value is "YES"
ACCEPT_HOW = ("accept it knowingly with --allow-burned-in (API: allow_burned_in=true; app: the "
              "\"accept burned-in text\" box)")


def burned_in_reason(ds) -> str | None:
    """Why the file's pixels may show identifying text, or None."""
    said = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if said == "YES":
        return "its header says BurnedInAnnotation YES"
    if said == "NO":
        return None
    image_type = ds.get("ImageType") or []
    values = [image_type] if isinstance(image_type, str) else list(image_type)  # one value, or several
    if "SCREEN SAVE" in (str(value).strip().upper() for value in values):
        return "it is a screen save (ImageType SCREEN SAVE) and does not say it is free of burned-in text"
    if str(ds.get("ConversionType", "") or "").strip().upper() == "SD":
        return "it is a scanned document (ConversionType SD) and does not say it is free of burned-in text"
    if str(ds.get("Modality", "") or "").strip().upper() == "US":
        return "it is an ultrasound image (Modality US) and does not say it is free of burned-in text"
    return None


def check_burned_in(ds, allow: bool) -> str | None:
    """The reason (to record) when the file may show identifying text and the caller allows it;
    a refusal when it does not; None when nothing suggests burned-in text."""
    reason = burned_in_reason(ds)
    if reason is not None and not allow:
        raise MedEditError(f"the DICOM image may show identifying text in its pixels ({reason}); an edit "
                           f"would keep it, so it is refused. Remove the text first, or {ACCEPT_HOW}")
    return reason
