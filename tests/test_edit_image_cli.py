"""`python -m pipelines edit|series --image FILE [--edit-mask FILE] [--keep-mask FILE]`: an upload
edited end to end; every output says it is an edited image, never a synthetic one; no DICOM
identifier reaches an output (inside the ZIP too), the terminal or a file name; bad files are
refused in one line before torch or a model loads."""

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from pipelines.cli import main
from pipelines.core.limits import EDITED_MARK
from pipelines.data.uploads import fit_pixels, read_image
from pipelines.data.phantoms import phantom
from pipelines.editing.regions import unpack_mask
from pipelines.export.images import read_png_provenance
from tests.upload_files import (dicom_bytes, dicom_dataset, identifiers, jpeg_extended_12_bit_dicom, png_bomb,
                                png_bytes)

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ["--anatomy", "Normal chest X-ray with no significant findings", "--style", "PA view"]


def grey_phantom_dicom():
    image = phantom("cxr", 3, size=96).image[..., 0].astype(np.uint16) * 16  # 12 bits stored
    return dicom_dataset(image, WindowCenter=2040, WindowWidth=4080)


def dicom_with_keep_mask(tmp_path):
    """The grey phantom DICOM written as upload.dcm, and keep.png beside it (its top 30 rows)."""
    ds = grey_phantom_dicom()
    upload = tmp_path / "upload.dcm"
    upload.write_bytes(dicom_bytes(ds))
    keep = np.zeros((96, 96), np.uint8)
    keep[:30] = 255
    (tmp_path / "keep.png").write_bytes(png_bytes(keep))
    return ds, upload


def test_an_uploaded_dicom_is_edited_and_none_of_its_identifiers_come_out(micro_model_folder, tmp_path, capsys):
    ds, upload = dicom_with_keep_mask(tmp_path)
    out = tmp_path / "out"
    rc = main(["edit", "--model", str(micro_model_folder), "--image", str(upload), *SOURCE,
               "--attribute", "pacemaker=1", "--steps", "5", "--keep-mask", str(tmp_path / "keep.png"),
               "--refresh", "0.2", "--out", str(out)])
    terminal = capsys.readouterr()
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["edited.png", "metadata.json", "neutral.png",
                                                      "side_by_side.png"]
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["source_sha256"] == hashlib.sha256(upload.read_bytes()).hexdigest()
    assert meta["edited"] == EDITED_MARK and "synthetic" not in meta
    assert unpack_mask(meta["regions"]["keep_mask"])[:20].all()
    record = read_png_provenance((out / "edited.png").read_bytes())
    assert record["edited"] == EDITED_MARK and "synthetic" not in record
    assert record["extra"]["source_sha256"] == meta["source_sha256"]
    assert record["digital_source_type"].endswith("/compositeWithTrainedAlgorithmicMedia")
    assert record["extra"]["image_sha256"] == meta["image_sha256"] and record["extra"]["regions"]
    assert meta["refresh"] == record["extra"]["refresh"] == 0.2
    assert_nothing_of_the_source_comes_out(ds, out, terminal)


def output_blobs(out: Path) -> dict[str, bytes]:
    """Every file under `out`, and every member of every ZIP there (stored or deflated), as bytes."""
    blobs = {}
    for path in (p for p in out.rglob("*") if p.is_file()):
        blobs[str(path)] = path.read_bytes()
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                blobs.update({f"{path}:{name}": archive.read(name) for name in archive.namelist()})
    return blobs


def assert_nothing_of_the_source_comes_out(ds, out: Path, terminal):
    blobs = output_blobs(out)
    everything = terminal.out + terminal.err + "".join(blobs)
    for value in identifiers(ds):
        assert value not in everything and not any(value.encode() in blob for blob in blobs.values()), value
    for name, blob in blobs.items():  # an edited upload is never called synthetic
        assert b"synthetic" not in blob.lower(), name


def test_a_series_of_an_uploaded_dicom_is_exported_as_an_edited_image(micro_model_folder, tmp_path, capsys):
    """`series --image`: frames from the upload to its edit, the keep mask's pixels the upload's
    own in every frame, the ZIP's DICOM a new anonymous Secondary Capture."""
    ds, upload = dicom_with_keep_mask(tmp_path)
    out = tmp_path / "out"
    rc = main(["series", "--model", str(micro_model_folder), "--image", str(upload), *SOURCE,
               "--attribute", "pacemaker=1", "--steps", "4", "--frames", "3", "--control-points", "3",
               "--keep-mask", str(tmp_path / "keep.png"), "--out", str(out)])
    terminal = capsys.readouterr()
    assert rc == 0, terminal.err
    assert sorted(p.name for p in out.iterdir()) == ["frame_000.png", "frame_001.png", "frame_002.png",
                                                      "manifest.json", "series.gif", "series.webp", "series.zip"]
    assert "note: resized from 96x96 to 64x64" in terminal.out
    meta = json.loads((out / "manifest.json").read_text())
    assert meta["source"] == "upload" and meta["edited"] == EDITED_MARK and "synthetic" not in meta
    assert meta["source_sha256"] == hashlib.sha256(upload.read_bytes()).hexdigest()
    assert meta["frames"] == 3 and unpack_mask(meta["regions"]["keep_mask"])[:20].all()
    source, _ = fit_pixels(read_image(upload.read_bytes()).pixels, 64)
    for i in range(3):
        frame = np.asarray(Image.open(out / f"frame_{i:03d}.png"))
        assert np.array_equal(frame[:16], source[:16]), i  # kept: the upload's own pixels
        record = read_png_provenance((out / f"frame_{i:03d}.png").read_bytes())
        assert record["source"] == "upload" and record["extra"]["source_sha256"] == meta["source_sha256"]
    with zipfile.ZipFile(out / "series.zip") as archive:
        assert "EDITED BY A GENERATIVE MODEL" in archive.read("README.txt").decode()
        exported = pydicom.dcmread(io.BytesIO(archive.read("dicom/frame_000.dcm")))
    assert exported.PatientName == "ANONYMOUS^EDITED" and exported.ConversionType == "WSD"
    assert exported.StudyInstanceUID != ds.StudyInstanceUID and exported.SOPInstanceUID != ds.SOPInstanceUID
    assert_nothing_of_the_source_comes_out(ds, out, terminal)


def test_burned_in_text_accepted_knowingly_is_said_by_every_output(micro_model_folder, tmp_path, capsys):
    """--allow-burned-in: the series runs, and its settings, PNGs (provenance and XMP), the ZIP's
    README and its DICOM all say the source's pixels may show identifying text."""
    ds = grey_phantom_dicom()
    ds.BurnedInAnnotation = "YES"
    upload = tmp_path / "burned.dcm"
    upload.write_bytes(dicom_bytes(ds))
    out = tmp_path / "out"
    rc = main(["series", "--model", str(micro_model_folder), "--image", str(upload), *SOURCE, "--steps", "2",
               "--frames", "2", "--control-points", "2", "--allow-burned-in", "--out", str(out)])
    terminal = capsys.readouterr()
    assert rc == 0, terminal.err
    assert "its pixels may show identifying text" in terminal.out  # the note
    assert json.loads((out / "manifest.json").read_text())["burned_in_annotation"] == "YES"
    png = (out / "frame_000.png").read_bytes()
    assert read_png_provenance(png)["extra"]["burned_in_annotation"] == "YES"
    assert b"burned-in annotation: the source's pixels may show identifying text" in png  # the XMP
    with zipfile.ZipFile(out / "series.zip") as archive:
        assert "MAY SHOW IDENTIFYING TEXT" in archive.read("README.txt").decode()
        exported = pydicom.dcmread(io.BytesIO(archive.read("dicom/frame_000.dcm")))
    assert exported.BurnedInAnnotation == "YES"
    assert_nothing_of_the_source_comes_out(ds, out, terminal)


def test_without_prompts_the_classifier_describes_the_upload(micro_model_folder, tmp_path, capsys):
    upload = tmp_path / "derm.png"
    upload.write_bytes(png_bytes(phantom("dermoscopy", 8, size=128, melanoma=False, hair=False).image))
    rc = main(["edit", "--model", str(micro_model_folder), "--image", str(upload), "--steps", "4",
               "--attribute", "hair=1", "--out", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    assert rc == 0 and "source prompts from the classifier" in printed
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert meta["anatomy"] == "a dermoscopic image with melanocytic nevus (NV)"
    assert "resized from 128x128 to 64x64" in meta["notes"]


BAD_SERIES = [  # the same checks in `series`, and its own numbers, all before torch loads
    ("bomb.png", png_bomb(), [], "refused before decoding"),
    ("ok.png", png_bytes(np.zeros((64, 64, 3), np.uint8)), ["--edit-mask", "{tmp}/empty.png"],
     "the edit mask is empty"),
    ("ok.png", png_bytes(np.zeros((64, 64, 3), np.uint8)), ["--frames", "1"], "frames must be between 2 and 64"),
    ("ok.png", png_bytes(np.zeros((64, 64, 3), np.uint8)), ["--mode", "sideways"], "unknown series mode"),
]
BAD = [
    ("bomb.png", png_bomb(), [], "refused before decoding"),
    ("cut.png", png_bytes(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))[:900], [],
     "corrupt or truncated"),
    ("note.txt", b"hello", [], "not a PNG, JPEG or DICOM file"),
    ("ok.png", png_bytes(np.zeros((64, 64, 3), np.uint8)), ["--edit-mask", "{tmp}/none.png"],
     "--edit-mask image file"),
    ("ok.png", png_bytes(np.zeros((64, 64, 3), np.uint8)), ["--edit-mask", "{tmp}/empty.png"],
     "the edit mask is empty"),
    ("ok.png", png_bytes(np.zeros((64, 64, 3), np.uint8)), ["--swap-at", "2"], "swap point must be between"),
    ("burned.dcm", dicom_bytes(dicom_dataset(np.zeros((64, 64), np.uint16), BurnedInAnnotation="YES")), [],
     "may show identifying text in its pixels (its header says BurnedInAnnotation YES)"),
    ("lying_long.dcm", dicom_bytes(dicom_dataset(np.zeros((64, 64), np.uint16),
                                                 PixelData=np.zeros((600, 600), np.uint16).tobytes())), [],
     "its pixel data holds 720000 bytes"),  # one line: pydicom's own warning never reaches stderr
    ("jpeg12.dcm", jpeg_extended_12_bit_dicom(), [], "compressed with JPEG Extended (12-bit)"),
]


def test_bad_files_are_refused_in_one_line_before_torch_loads(tmp_path):
    """All cases in one fresh interpreter: 'torch was never imported' is a fact about it."""
    (tmp_path / "empty.png").write_bytes(png_bytes(np.zeros((64, 64), np.uint8)))
    cases = []
    commands = [("edit", case) for case in BAD] + [("series", case) for case in BAD_SERIES]
    for i, (command, (name, data, extra, message)) in enumerate(commands):
        path = tmp_path / f"{i}-{name}"
        path.write_bytes(data)
        extra = [arg.replace("{tmp}", str(tmp_path)) for arg in extra]
        cases.append(([command, "--image", str(path), *SOURCE, *extra, "--out", str(tmp_path / f"out{i}")],
                      message))
    script = (
        "import contextlib, io, json, sys\n"
        "from pipelines.cli import main\n"
        "results = []\n"
        "for argv, _ in json.loads(sys.argv[1]):\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        rc = main(argv)\n"
        "    results.append([rc, err.getvalue()])\n"
        "print(json.dumps({'results': results, 'torch': 'torch' in sys.modules}))\n")
    done = subprocess.run([sys.executable, "-c", script, json.dumps(cases)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    report = json.loads(done.stdout.splitlines()[-1])
    assert len(done.stdout.splitlines()) == 1, done.stdout
    assert not report["torch"]
    for (argv, message), (rc, err) in zip(cases, report["results"]):
        assert rc == 2 and err.count("\n") == 1 and message in err, (argv, err)
    assert not any(p.name.startswith("out") for p in tmp_path.iterdir())


@pytest.mark.parametrize("command", ["edit", "series"])
@pytest.mark.parametrize("flag", ["--edit-mask", "--keep-mask", "--refresh", "--allow-burned-in"])
def test_a_mask_or_refresh_needs_an_image(tmp_path, command, flag, capsys):
    value = {"--refresh": ["0.2"], "--allow-burned-in": []}.get(flag, [str(tmp_path / "m.png")])
    assert main([command, *SOURCE, flag, *value, "--out", str(tmp_path / "o")]) == 2
    assert "need --image" in capsys.readouterr().err


def test_a_mask_of_another_size_is_refused_by_name(micro_model_folder, tmp_path, capsys):
    (tmp_path / "img.png").write_bytes(png_bytes(np.zeros((80, 80, 3), np.uint8)))
    (tmp_path / "mask.png").write_bytes(png_bytes(np.full((50, 50), 255, np.uint8)))
    rc = main(["edit", "--model", str(micro_model_folder), "--image", str(tmp_path / "img.png"), *SOURCE,
               "--edit-mask", str(tmp_path / "mask.png"), "--out", str(tmp_path / "o")])
    assert rc == 2 and "the edit mask is 50x50; it must be the image's size (80x80)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    Image.open(tmp_path / "img.png").close()


@pytest.mark.parametrize("command", [["edit"], ["series", "--frames", "2", "--no-dicom"]])
def test_json_output_is_only_json_with_the_notes_inside(micro_model_folder, tmp_path, capsys, command):
    (tmp_path / "img.png").write_bytes(png_bytes(np.zeros((80, 80, 3), np.uint8)))
    rc = main([*command, "--model", str(micro_model_folder), "--image", str(tmp_path / "img.png"), *SOURCE,
               "--steps", "3", "--attribute", "pacemaker=1", "--json", "--out", str(tmp_path / "o")])
    printed = json.loads(capsys.readouterr().out)  # no "note:" line before it
    assert rc == 0 and "resized from 80x80 to 64x64" in printed["notes"] and printed["edited"] == EDITED_MARK
