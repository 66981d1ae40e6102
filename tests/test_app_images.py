"""Editing an image the client brings, through the named endpoints /describe_image, /edit_image and
/series_image (gradio_client, against the micro model; the describer is the shipped classifier)."""

import hashlib
import io
import json
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from pipelines.data.phantoms import render
from tests.test_app_api import is_png, pixels, raw_call
from tests.upload_files import dicom_bytes, dicom_dataset, identifiers, png_bytes

gradio_client = pytest.importorskip("gradio_client")
FAST = dict(steps=4, seed=5, anatomy_scale=3.0, style_scale=3.0, swap_at=0.25)
SOURCE = dict(anatomy="Chest X-ray showing pleural effusion", style="no devices")


@pytest.fixture(scope="module")
def client(app_url):
    return gradio_client.Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def phantom_png(tmp_path_factory):
    """A chest X-ray phantom, 96x80 (so it is resized and cropped), as a PNG file."""
    image = render("cxr", {"effusion": True, "pacemaker": False}, seed=30_000_011, size=128).image
    path = tmp_path_factory.mktemp("upload") / "phantom.png"
    Image.fromarray(image).resize((96, 80), Image.BOX).save(path)
    return path


def handle(path):
    return gradio_client.handle_file(str(path))


def test_describe_image_proposes_prompts_with_confidences(client, phantom_png):
    description = client.predict(handle(phantom_png), api_name="/describe_image")
    assert description["modality"] == "cxr"
    assert description["anatomy"] and description["style"]
    names = {f["name"] for f in description["findings"]}
    assert {"effusion", "pacemaker"} <= names
    assert all(0.5 <= f["confidence"] <= 1.0 for f in description["findings"])


def test_edit_image_keeps_the_keep_mask_and_records_only_the_files_hash(client, phantom_png, tmp_path):
    keep = np.zeros((80, 96), np.uint8)
    keep[:, :48] = 255  # the left half must stay
    keep_path = tmp_path / "keep.png"
    Image.fromarray(keep).save(keep_path)
    source, edited, difference, figure, archive, settings = client.predict(
        handle(phantom_png), **SOURCE, to_anatomy="Normal chest X-ray with no significant findings", to_style="",
        sliders='{"pacemaker": 1.0}', model="", locality=0.0, edit_mask=None, keep_mask=handle(keep_path),
        **FAST, api_name="/edit_image")
    for path in (source, edited, difference, figure):
        assert is_png(path)
    before, after = pixels(source), pixels(edited)
    assert before.shape == after.shape == (64, 64, 3)
    kept = np.asarray(Image.fromarray(keep).resize((77, 64), Image.BOX))[:, 6:70] >= 128  # fitted as the image
    assert kept.any() and (after[kept] == before[kept]).all()
    assert (after[~kept] != before[~kept]).any()
    assert settings["source"] == "upload" and settings["kind"] == "edit"
    assert settings["source_sha256"] == hashlib.sha256(phantom_png.read_bytes()).hexdigest()
    assert [t["name"] for t in settings["terms"]] == ["prompts", "pacemaker"]
    assert any("resized" in n or "cropped" in n for n in settings["notes"])
    with zipfile.ZipFile(archive) as z:
        manifest = json.loads(z.read("manifest.json"))
        assert manifest["provenance"]["source"] == "upload"
        assert "phantom.png" not in json.dumps(manifest)


def test_a_dicom_upload_leaves_no_identifier_in_any_output(client, tmp_path):
    stored = (np.linspace(0, 4095, 96 * 96).reshape(96, 96)).astype(np.uint16)
    ds = dicom_dataset(stored)
    path = tmp_path / "study.dcm"
    path.write_bytes(dicom_bytes(ds))
    *files, archive, settings = client.predict(handle(path), "", "", "", "", '{"effusion": 1.0}', model="",
                                               locality=0.0, edit_mask=None, keep_mask=None, **FAST,
                                               api_name="/edit_image")
    assert any("classifier" in n for n in settings["notes"])  # no prompts sent: described
    blobs = [open(f, "rb").read() for f in files] + [json.dumps(settings).encode()]
    with zipfile.ZipFile(archive) as z:
        blobs += [z.read(name) for name in z.namelist()]
        assert any(name.endswith(".dcm") for name in z.namelist())
    for secret in identifiers(ds) + ["study.dcm"]:
        assert not any(secret.encode() in blob for blob in blobs), secret


def test_series_image_returns_frames_and_its_export(client, phantom_png):
    frames, gif, archive, settings = client.predict(
        handle(phantom_png), **SOURCE, to_anatomy="", to_style="", sliders='{"effusion": -1.0, "marker": 1.0}',
        mode="latent", frames=3, control_points=3, bend=0.0, model="", locality=0.0, edit_mask=None,
        keep_mask=None, refresh=0.25, **FAST, api_name="/series_image")
    assert len(frames) == 3 and all(is_png(f["image"]) for f in frames)
    assert Image.open(gif).n_frames == 3
    assert settings["source"] == "upload" and settings["frames"] == 3 and settings["refresh"] == 0.25
    with zipfile.ZipFile(archive) as z:
        assert sum(n.startswith("frames/") for n in z.namelist()) == 3


def test_an_out_of_range_refresh_is_refused_by_name(client, phantom_png):
    with pytest.raises(Exception) as caught:
        client.predict(handle(phantom_png), **SOURCE, to_anatomy="", to_style="", sliders='{"effusion": -1.0}',
                       model="", locality=0.0, edit_mask=None, keep_mask=None, refresh=3, **FAST,
                       api_name="/edit_image")
    assert "refresh must be between 0 and 1, got 3" in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_bad_files_get_clear_messages_and_are_removed(app_url, client, tmp_path):
    import httpx
    truncated = png_bytes(np.zeros((64, 64, 3), np.uint8))[:60]
    with httpx.Client(base_url=app_url, timeout=60) as http:
        path = http.post("gradio_api/upload", files={"files": ("x.png", truncated)}).json()[0]
    stream = raw_call(app_url, "describe_image", [{"path": path, "meta": {"_type": "gradio.FileData"}}])
    assert "truncated" in stream or "corrupt" in stream, stream[-400:]
    assert not os.path.exists(path)
    # A server file outside gradio's folders: gradio itself refuses it.
    stream = raw_call(app_url, "describe_image", [{"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}}])
    assert "event: error" in stream and "hostname" not in stream
    # A file inside gradio's folder that no client uploaded (a result of another request): refused by name.
    from app.outputs import folders
    client.predict("a dermoscopic image with melanocytic nevus (NV)", "no artifacts", 1, 2, 3.0, 3.0, "",
                   api_name="/generate")
    result = str(max(folders.root.glob("*/image.png"), key=os.path.getmtime))  # the server's own file
    stream = raw_call(app_url, "describe_image", [{"path": result, "meta": {"_type": "gradio.FileData"}}])
    assert "not uploaded to this server" in stream, stream[-400:]
    assert os.path.exists(result)
    # Not a file payload at all: gradio's own validation refuses it before the handler.
    assert "event: error" in raw_call(app_url, "describe_image", ["a prompt"])
    # The server still answers.
    assert client.predict(handle(_png(tmp_path)), api_name="/describe_image")["modality"]


def test_export_refuses_the_settings_of_an_uploaded_images_edit(client):
    with pytest.raises(Exception, match="uploaded image"):
        client.predict(json.dumps({"source": "upload", "seed": 1}), api_name="/export")


def test_painted_layers_become_the_edit_and_keep_masks():
    from app.painting import painted_masks
    layer = np.zeros((384, 384, 4), np.uint8)
    layer[:96, :, :] = (22, 163, 74, 140)  # green, at the brush's opacity: the top quarter may change
    layer[288:, :192, :] = (220, 38, 38, 140)  # red: the bottom-left must stay
    layer[150:160, :, :] = (220, 38, 38, 10)  # a faint fringe: not painted
    edit, keep = painted_masks([layer], 64)
    assert edit.shape == keep.shape == (64, 64)
    assert edit[:16].all() and not edit[16:].any()
    assert keep[48:, :32].all() and keep.sum() == 16 * 32
    assert painted_masks([np.zeros((384, 384, 4), np.uint8)], 64) == (None, None)
    with pytest.raises(Exception, match="RGBA"):
        painted_masks([np.zeros((384, 384, 3), np.uint8)], 64)


def _png(tmp_path):
    path = tmp_path / "plain.png"
    Image.open(io.BytesIO(png_bytes(np.full((64, 64, 3), 90, np.uint8)))).save(path)
    return path
