"""DICOM Secondary Capture series: valid, one series, exact pixels, marked synthetic (or, for an
edited upload, edited: new UIDs and an anonymous patient that says nothing of the source)."""

import dataclasses
import io
import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from PIL import Image

from pipelines.export.dicom import dicom_series_bytes
from pipelines.core.errors import MedEditError
from pipelines.core.limits import EDITED_MARK, SYNTHETIC_MARK
from pipelines.export.provenance import Provenance


def provenance(modality):
    return Provenance("mededit/tiny-dit", "0123abc", modality, "a chest", "plain",
                      "a chest, pleural effusion", "a pacemaker with leads", 7, 0.5, 10, {"guidance": 3.0})


def frames(n, mode, size=(17, 13)):  # odd sizes exercise pixel-data padding
    rng = np.random.default_rng(n)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    return [Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode) for _ in range(n)]


@pytest.mark.parametrize("source", ["generated", "upload"])
@pytest.mark.parametrize("modality, mode", [("cxr", "L"), ("dermoscopy", "RGB")])
def test_every_file_passes_dicom3tools(tmp_path, modality, mode, source):
    """dciodvfy checks each file against the Secondary Capture IOD (types, conditions, defined
    terms); dcentvfy checks that the series' files agree on patient, study and series."""
    if shutil.which("dciodvfy") is None:
        pytest.skip("dicom3tools is not installed (apt-get install dicom3tools; .ci/run installs it)")
    paths = []
    marked = dataclasses.replace(provenance(modality), source=source)
    for name, raw in dicom_series_bytes(frames(2, mode), marked):
        paths.append(tmp_path / name)
        paths[-1].write_bytes(raw)
    for path in paths:
        report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        lines = (report.stdout + report.stderr).splitlines()
        assert lines and lines[0].strip() == "SCImage"  # it recognised the IOD it checked
        assert not [line for line in lines if line.startswith(("Error", "Warning"))], lines
    report = subprocess.run(["dcentvfy", *map(str, paths)], capture_output=True, text=True)
    assert "Error" not in report.stdout + report.stderr, report.stdout + report.stderr


@pytest.mark.parametrize("modality, mode, photometric, samples",
                         [("cxr", "L", "MONOCHROME2", 1), ("dermoscopy", "RGB", "RGB", 3)])
def test_series_reads_back_whole(tmp_path, modality, mode, photometric, samples):
    series = frames(3, mode)
    named = dicom_series_bytes(series, provenance(modality))
    assert [name for name, _ in named] == ["frame_000.dcm", "frame_001.dcm", "frame_002.dcm"]
    datasets = [pydicom.dcmread(io.BytesIO(raw)) for _, raw in named]
    for _, raw in named:
        assert raw[128:132] == b"DICM"
    assert len({ds.StudyInstanceUID for ds in datasets}) == 1
    assert len({ds.SeriesInstanceUID for ds in datasets}) == 1
    assert len({ds.SOPInstanceUID for ds in datasets}) == 3
    for i, (ds, frame) in enumerate(zip(datasets, series)):
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert ds.InstanceNumber == i + 1
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY"]
        assert "synthetic" in ds.SeriesDescription.lower()
        assert SYNTHETIC_MARK in ds.ImageComments and '"seed": 7' in ds.ImageComments
        assert ds.PatientName == "SYNTHETIC^PHANTOM" and ds.PatientID == "SYNTHETIC"
        assert ds.ConversionType == "SYN" and ds.BurnedInAnnotation == "NO"
        assert ds.PhotometricInterpretation == photometric and ds.SamplesPerPixel == samples
        if samples == 3:
            assert ds.PlanarConfiguration == 0
        assert np.array_equal(ds.pixel_array, np.asarray(frame))


@pytest.mark.parametrize("source, kind", [("generated", "trainedAlgorithmicMedia"),
                                          ("upload", "compositeWithTrainedAlgorithmicMedia")])
def test_the_iptc_digital_source_type_is_in_the_header(source, kind):
    marked = dataclasses.replace(provenance("dermoscopy"), source=source)
    ds = pydicom.dcmread(io.BytesIO(dicom_series_bytes(frames(1, "RGB"), marked)[0][1]))
    uri = "http://cv.iptc.org/newscodes/digitalsourcetype/" + kind
    assert ds.ConversionType == {"generated": "SYN", "upload": "WSD"}[source]  # synthetic; workstation
    assert uri in ds.DerivationDescription and f'"digital_source_type": "{uri}"' in ds.ImageComments


def test_an_edited_upload_is_a_new_edited_secondary_capture_never_called_synthetic():
    marked = dataclasses.replace(provenance("cxr"), source="upload", extra={"source_sha256": "f" * 64})
    named = dicom_series_bytes(frames(2, "L"), marked)
    datasets = [pydicom.dcmread(io.BytesIO(raw)) for _, raw in named]
    again = pydicom.dcmread(io.BytesIO(dicom_series_bytes(frames(1, "L"), marked)[0][1]))
    for ds in datasets:
        assert ds.PatientName == "ANONYMOUS^EDITED" and ds.PatientID == "EDITED"
        assert ds.PatientBirthDate == "" and ds.PatientSex == ""
        assert ds.ConversionType == "WSD" and list(ds.ImageType) == ["DERIVED", "SECONDARY"]
        assert ds.SeriesDescription == ds.StudyDescription == f"MedEdit {EDITED_MARK}"
        assert len(ds.SeriesDescription) <= 64  # LO
        assert ds.ImageComments.startswith(f"MedEdit: {EDITED_MARK}. ") and "f" * 64 in ds.ImageComments
        assert ds.DerivationDescription.startswith(EDITED_MARK)
        assert "BurnedInAnnotation" not in ds  # what the upload's pixels show is not known here
        assert "SourceImageSequence" not in ds and "ReferencedImageSequence" not in ds
        assert "synthetic" not in str(ds).lower()
    # new UIDs: one study and series for the export, none shared with another export
    assert len({ds.SeriesInstanceUID for ds in datasets}) == 1
    assert again.StudyInstanceUID != datasets[0].StudyInstanceUID
    assert again.SeriesInstanceUID != datasets[0].SeriesInstanceUID
    assert again.SOPInstanceUID not in {ds.SOPInstanceUID for ds in datasets}


def test_bytes_match_files_and_bad_input_leaves_nothing(tmp_path):
    named = dicom_series_bytes(frames(2, "L"), provenance("cxr"))
    assert [n for n, _ in named] == ["frame_000.dcm", "frame_001.dcm"]
    assert pydicom.dcmread(io.BytesIO(named[1][1])).InstanceNumber == 2
    for bad in ([], frames(1, "L", (8, 8)) + frames(1, "L", (9, 8))):
        with pytest.raises(MedEditError):
            dicom_series_bytes(bad, provenance("cxr"))
    with pytest.raises(MedEditError):
        dicom_series_bytes(frames(1, "L"), provenance("ct"))


def test_an_upload_accepted_with_burned_in_text_is_exported_saying_so():
    from pipelines.export.xmp import xmp_packet
    from pipelines.export.provenance import provenance_record
    marked = dataclasses.replace(provenance("cxr"), source="upload",
                                 extra={"source_sha256": "f" * 64, "burned_in_annotation": "YES"})
    ds = pydicom.dcmread(io.BytesIO(dicom_series_bytes(frames(1, "L"), marked)[0][1]))
    assert ds.BurnedInAnnotation == "YES" and '"burned_in_annotation": "YES"' in ds.ImageComments
    assert "may show identifying text" in xmp_packet(provenance_record(marked))
    plain = dataclasses.replace(marked, extra={"source_sha256": "f" * 64})
    assert "identifying text" not in xmp_packet(provenance_record(plain))
