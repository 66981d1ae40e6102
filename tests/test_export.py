"""PNG/animation/ZIP export: lossless, self-describing, marked synthetic (or, for an edited upload,
edited and never synthetic), atomic."""

import dataclasses
import hashlib
import io
import json
import xml.etree.ElementTree as ElementTree
import zipfile

import numpy as np
import pytest
from PIL import Image

from pipelines.core.errors import MedEditError
from pipelines.core.limits import EDITED_MARK, SYNTHETIC_MARK
from pipelines.export.archive import export_zip
from pipelines.export.images import (animation_gif, animation_webp_lossless, comparison, difference_map, enlarged,
                                     png_bytes, read_png_provenance, side_by_side)
from pipelines.export.provenance import Provenance, provenance_from_settings

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
IPTC_EXT = "{http://iptc.org/std/Iptc4xmpExt/2008-02-29/}"


def provenance(modality="dermoscopy"):
    return Provenance(model_id="mededit/tiny-dit", model_revision="0123abc", modality=modality,
                      anatomy="a nevus", style="plain", to_anatomy="a nevus, melanoma (MEL)",
                      to_style="with hairs visible on skin", seed=42, swap_at=0.3, steps=12,
                      extra={"guidance": np.float32(4.5), "sliders": {"hair": 0.7}})


def frames(n=4, size=(24, 20), mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    return [Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode) for _ in range(n)]


def test_png_round_trip_is_lossless_and_carries_provenance():
    for image in frames(1) + frames(1, mode="L"):
        data = png_bytes(image, provenance(), {"frame": 3, "t": 0.5})
        with Image.open(io.BytesIO(data)) as back:
            assert back.mode == image.mode
            assert np.array_equal(np.asarray(back), np.asarray(image))
            assert back.text["Comment"] == SYNTHETIC_MARK
            assert back.text["Disclaimer"] == SYNTHETIC_MARK
            assert back.text["Software"]
        record = read_png_provenance(data)
        assert record["seed"] == 42 and record["swap_at"] == 0.3
        assert record["model_id"] == "mededit/tiny-dit" and record["model_revision"] == "0123abc"
        assert record["to_style"] == "with hairs visible on skin"
        assert record["extra"] == {"guidance": 4.5, "sliders": {"hair": 0.7}, "frame": 3, "t": 0.5}
        assert record["synthetic"] == SYNTHETIC_MARK


def test_png_without_provenance_is_still_marked():
    record = read_png_provenance(png_bytes(frames(1)[0], None))
    assert record["synthetic"] == SYNTHETIC_MARK


def xmp_description(data: bytes) -> dict:
    """The XMP packet as Pillow's own reader returns it (it needs defusedxml), and its namespaces
    checked with the standard library's XML parser."""
    with Image.open(io.BytesIO(data)) as image:
        described = image.getxmp()["xmpmeta"]["RDF"]["Description"]
        raw = image.info["xmp"]
    root = ElementTree.fromstring(raw.split(b"?>", 1)[1].rsplit(b"<?xpacket", 1)[0])
    rdf = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
    attributes = root.find(f"{rdf}RDF/{rdf}Description").attrib
    assert attributes[IPTC_EXT + "DigitalSourceType"] == described["DigitalSourceType"]
    return described


@pytest.mark.parametrize("source, kind, mark", [("generated", "trainedAlgorithmicMedia", SYNTHETIC_MARK),
                                                ("upload", "compositeWithTrainedAlgorithmicMedia", EDITED_MARK)])
def test_png_and_webp_carry_the_iptc_digital_source_type_in_xmp(source, kind, mark):
    marked = dataclasses.replace(provenance(), source=source)
    image = frames(1)[0]
    png = png_bytes(image, marked)
    webp = animation_webp_lossless(frames(2), provenance=marked)
    for data in (png, webp):
        described = xmp_description(data)
        assert described["DigitalSourceType"] == IPTC + kind
        assert described["AISystemUsed"] == "MedEdit (mededit/tiny-dit)"
        assert described["AISystemVersionUsed"] == "0123abc"
        assert described["description"]["Alt"]["li"]["text"] == f"MedEdit: {mark}"
    with Image.open(io.BytesIO(png)) as back:  # still lossless, still the tEXt record
        assert np.array_equal(np.asarray(back), np.asarray(image))
    record = read_png_provenance(png)
    assert record["digital_source_type"] == IPTC + kind and record["source"] == source
    assert xmp_description(png_bytes(image, None))["DigitalSourceType"] == IPTC + "trainedAlgorithmicMedia"


def test_an_edit_of_an_upload_is_marked_composite():
    settings = {"model_id": "m", "model_revision": "r", "anatomy": "a chest x-ray", "style": "",
                "to_anatomy": "a chest x-ray with pleural effusion", "to_style": "", "seed": 1,
                "swap_at": 0.2, "steps": 10, "sliders": {}, "anatomy_scale": 3.0, "style_scale": 3.0,
                "swap_step": 2, "locality": 0.3}
    assert provenance_from_settings(settings).digital_source_type == IPTC + "trainedAlgorithmicMedia"
    regions = {"keep_mask": {"width": 8, "height": 8, "share": 0.25, "packbits_base64": "AAA="}}
    upload = provenance_from_settings({**settings, "source": "upload", "image_sha256": "ab12",
                                       "source_sha256": "cd34", "regions": regions})
    assert upload.digital_source_type == IPTC + "compositeWithTrainedAlgorithmicMedia"
    assert upload.extra["image_sha256"] == "ab12" and upload.extra["source_sha256"] == "cd34"
    assert upload.extra["regions"] == regions and upload.mark == EDITED_MARK
    assert "source_sha256" not in provenance_from_settings({**settings, "source_sha256": "cd34"}).extra
    with pytest.raises(MedEditError, match="source must be one of"):
        dataclasses.replace(upload, source="camera").validate()


def test_difference_map_is_bright_only_where_changed():
    before = Image.new("RGB", (16, 16), (100, 100, 100))
    after = before.copy()
    after.paste((200, 100, 100), (4, 4, 8, 8))
    diff = np.asarray(difference_map(before, after)).sum(axis=2)
    assert diff[5, 5] > 600 and diff[0, 0] < 30
    figure = side_by_side(before, after)
    assert figure.width > 3 * 16 and figure.mode == "RGB"
    assert side_by_side(before, after, diff=False).width < figure.width


def test_animations_loop_with_all_frames_and_webp_is_lossless():
    series = frames(5)
    with Image.open(io.BytesIO(animation_gif(series))) as gif:
        assert gif.n_frames == 5 and gif.info["loop"] == 0
    with Image.open(io.BytesIO(animation_webp_lossless(series))) as webp:
        assert webp.n_frames == 5
        for i, frame in enumerate(series):
            webp.seek(i)
            assert np.array_equal(np.asarray(webp.convert("RGB")), np.asarray(frame))
    with Image.open(io.BytesIO(animation_gif(series, ping_pong=True))) as gif:
        assert gif.n_frames == 8


def test_export_zip_contains_everything_with_matching_manifest(tmp_path):
    series = frames(3, mode="L")
    out = export_zip(series, provenance("cxr"), [{"t": t} for t in (0.0, 0.5, 1.0)], tmp_path / "e.zip")
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        expected = {f"frames/frame_{i:03d}.png" for i in range(3)} | {f"dicom/frame_{i:03d}.dcm" for i in range(3)}
        expected |= {"side_by_side.png", "series.gif", "series.webp", "README.txt", "manifest.json"}
        assert names == expected
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["synthetic"] == SYNTHETIC_MARK and manifest["provenance"]["seed"] == 42
        assert {f["path"] for f in manifest["files"]} == expected - {"manifest.json"}
        for entry in manifest["files"]:
            data = archive.read(entry["path"])
            assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["size"]
        assert "synthetic" in archive.read("README.txt").decode().lower()
        for i, frame in enumerate(series):
            data = archive.read(f"frames/frame_{i:03d}.png")
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), np.asarray(frame))
            assert read_png_provenance(data)["extra"]["frame"] == i
        with Image.open(io.BytesIO(archive.read("series.webp"))) as webp:
            assert webp.n_frames == 3
        with Image.open(io.BytesIO(archive.read("series.gif"))) as gif:
            assert gif.n_frames == 3
    assert [p.name for p in tmp_path.iterdir()] == ["e.zip"]  # no temp file left behind


def test_export_zip_without_dicom_and_with_before_after(tmp_path):
    series = frames(2)
    before, after = frames(2, seed=1)
    out = export_zip(series, provenance(), None, tmp_path / "e.zip", before=before, after=after, dicom=False)
    with zipfile.ZipFile(out) as archive:
        assert not any(n.startswith("dicom/") for n in archive.namelist())


@pytest.mark.parametrize("bad", [
    lambda: (frames(0), provenance()),
    lambda: (frames(1, size=(8, 8)) + frames(1, size=(9, 8)), provenance()),
    lambda: (frames(2), provenance("mri")),
    lambda: (frames(2), Provenance("m", "r", "cxr", "a", "s", "a", "s", 1, 1.5, 10, {})),
    lambda: ([Image.new("I;16", (8, 8))], provenance()),
    lambda: (["not an image"], provenance()),
])
def test_bad_input_raises_and_leaves_nothing(tmp_path, bad):
    series, prov = bad()
    with pytest.raises(MedEditError):
        export_zip(series, prov, None, tmp_path / "out" / "e.zip")
    assert list(tmp_path.rglob("*")) in ([], [tmp_path / "out"])
    assert not list(tmp_path.rglob("*.zip")) and not list(tmp_path.rglob("*.tmp"))


def test_mismatched_extras_and_half_before_after_raise(tmp_path):
    with pytest.raises(MedEditError):
        export_zip(frames(2), provenance(), [{}], tmp_path / "e.zip")
    with pytest.raises(MedEditError):
        export_zip(frames(2), provenance(), None, tmp_path / "e.zip", before=frames(1)[0])
    with pytest.raises(MedEditError):
        difference_map(*frames(1, size=(8, 8)), *frames(1, size=(9, 9)))
    assert list(tmp_path.iterdir()) == []


def edited_upload():
    regions = {"edit_mask": {"width": 24, "height": 20, "share": 0.125, "packbits_base64": "AAA="}}
    return dataclasses.replace(provenance(), source="upload",
                               extra={"source_sha256": "f" * 64, "image_sha256": "e" * 64, "regions": regions})


def test_an_edited_upload_is_marked_edited_and_never_synthetic_in_any_file(tmp_path):
    """PNG text and XMP, GIF comment, WebP EXIF and XMP, the ZIP's README, manifest, figure and
    DICOM: each says what an edited upload is, and no file anywhere calls it synthetic."""
    marked, series = edited_upload(), frames(3)
    png = png_bytes(series[0], marked, {"frame": 0})
    with Image.open(io.BytesIO(png)) as back:
        assert back.text["Comment"] == back.text["Disclaimer"] == EDITED_MARK
    record = read_png_provenance(png)
    assert record["edited"] == EDITED_MARK and "synthetic" not in record
    assert record["extra"]["source_sha256"] == "f" * 64 and record["extra"]["regions"]["edit_mask"]
    with Image.open(io.BytesIO(animation_gif(series, provenance=marked))) as gif:
        assert gif.info["comment"].startswith(f"MedEdit: {EDITED_MARK}. ".encode())
    with Image.open(io.BytesIO(animation_webp_lossless(series, provenance=marked))) as webp:
        assert webp.getexif()[0x010E].startswith(f"MedEdit: {EDITED_MARK}. ")
    out = export_zip(series, marked, None, tmp_path / "e.zip")
    with zipfile.ZipFile(out) as archive:
        blobs = {name: archive.read(name) for name in archive.namelist()}
    readme = blobs["README.txt"].decode()
    assert "EDITED BY A GENERATIVE MODEL" in readme and EDITED_MARK in readme and "f" * 64 in readme
    assert "edit mask (12% of the image)" in readme
    manifest = json.loads(blobs["manifest.json"])
    assert manifest["edited"] == EDITED_MARK and manifest["provenance"]["source"] == "upload"
    assert any(name.startswith("dicom/") for name in blobs)
    for name, blob in blobs.items():
        assert b"synthetic" not in blob.lower(), name


def test_an_edited_uploads_figure_says_source_and_edited():
    """comparison() labels and marks the figure by the provenance; a generated one's is the
    plain side_by_side."""
    before, after = frames(2, size=(64, 64))
    assert comparison(before, after, provenance()).tobytes() == side_by_side(enlarged(before), enlarged(after)).tobytes()
    upload = comparison(before, after, edited_upload())
    big = (enlarged(before), enlarged(after))
    assert upload.tobytes() == side_by_side(*big, ("source", "edited"), True, EDITED_MARK).tobytes()
    assert upload.tobytes() != side_by_side(*big).tobytes()
