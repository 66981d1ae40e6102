"""The app's named endpoints through gradio_client, against a micro random-weight model."""

import hashlib
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")

FAST = dict(steps=4)
SOURCE = dict(anatomy="a dermoscopic image with melanocytic nevus (NV)", style="light skin, no artifacts")
EDIT = dict(**SOURCE, to_style="light skin, with hairs visible on skin", sliders='{"hair": 2.5}',
            swap_at=0.25, seed=3, **FAST)


@pytest.fixture(scope="module")
def client(app_url):
    return gradio_client.Client(app_url, verbose=False)


def is_png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_named_endpoints_are_listed(client):
    names = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert {"/generate", "/edit", "/series", "/export"} <= names


def test_generate_returns_a_png(client):
    image, settings = client.predict(**SOURCE, seed=1, **FAST, api_name="/generate")
    assert is_png(image)
    assert pixels(image).shape == (64, 64, 3)
    assert settings["seed"] == 1 and settings["steps"] == 4


def test_edit_returns_pngs_that_differ(client):
    neutral, edited, difference, figure, settings = client.predict(**EDIT, api_name="/edit")
    for path in (neutral, edited, difference, figure):
        assert is_png(path)
    before, after = pixels(neutral), pixels(edited)
    assert before.shape == after.shape == (64, 64, 3)  # true pixels, not the enlarged view
    assert (before != after).any()
    assert settings["sliders"] == {"hair": 2.5} and settings["seed"] == 3 and settings["swap_at"] == 0.25
    again = client.predict(**EDIT, api_name="/edit")  # reproducible
    assert np.array_equal(pixels(again[1]), after)


def test_series_returns_png_frames_and_a_gif(client):
    frames, animation, settings = client.predict(**EDIT, mode="embedding", frames=4, bend=0.5,
                                                 api_name="/series")
    assert len(frames) == 4 and all(is_png(f["image"]) for f in frames)
    with Image.open(animation) as gif:
        assert gif.format == "GIF" and gif.n_frames >= 2
    assert settings["mode"] == "embedding" and settings["frames"] == 4


def test_a_latent_series_through_the_api_is_the_pipelines_own(client, micro_pipeline):
    """Bitwise: the PNG frames /series returns are the frames MedEditPipeline.series makes for the
    same request (the API adds nothing and loses nothing on the way)."""
    from pipelines.editing.requests import Edit, Sampling, Series
    request = dict(EDIT, sliders='{"hair": 1.5, "ruler": -1}', seed=11, swap_at=0.3, locality=0.2,
                   anatomy_scale=4.0, style_scale=2.5)
    frames, _, settings = client.predict(**request, mode="latent", frames=5, control_points=4,
                                         api_name="/series")
    s = Sampling(request["anatomy"], request["style"], seed=11, steps=4, anatomy_scale=4.0, style_scale=2.5)
    e = Edit(to_style=request["to_style"], sliders={"hair": 1.5, "ruler": -1.0}, swap_at=0.3, locality=0.2)
    direct = micro_pipeline.series(s, e, Series(frames=5, mode="latent", control_points=4))
    assert settings["mode"] == "latent" and len(frames) == len(direct.frames) == 5
    for served, made in zip(frames, direct.frames):
        assert np.array_equal(pixels(served["image"]), made)
    assert not np.array_equal(direct.frames[0], direct.frames[-1])  # a series, not one image five times


def check_zip(path, frame_count: int):
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        expected = {f"frames/frame_{i:03d}.png" for i in range(frame_count)}
        assert expected | {"side_by_side.png", "series.gif", "series.webp", "README.txt", "manifest.json"} <= names
        assert any(n.startswith("dicom/") for n in names)
        manifest = json.loads(archive.read("manifest.json"))
        listed = {f["path"] for f in manifest["files"]}
        assert listed == names - {"manifest.json"}
        for entry in manifest["files"]:
            assert hashlib.sha256(archive.read(entry["path"])).hexdigest() == entry["sha256"]
        return manifest


def test_export_of_an_edit_and_of_a_series(client):
    *_, settings = client.predict(**EDIT, api_name="/edit")
    manifest = check_zip(client.predict(json.dumps(settings), api_name="/export"), 2)
    assert manifest["provenance"]["seed"] == 3 and manifest["provenance"]["extra"]["sliders"] == {"hair": 2.5}
    assert manifest["provenance"]["extra"]["locality"] == settings["locality"] == 0.3  # the model's default
    *_, series_settings = client.predict(**EDIT, frames=3, api_name="/series")
    check_zip(client.predict(json.dumps(series_settings), api_name="/export"), 3)


@pytest.mark.parametrize("bad, message", [
    (dict(swap_at=7), "swap point must be between 0 and 1"),
    (dict(locality=2), "locality must be between 0 and 0.9"),
    (dict(sliders='{"hair": NaN}'), "sliders JSON contains NaN; give finite numbers"),
    (dict(anatomy_scale="nan"), "anatomy strength must be a number"),
    (dict(sliders='{"hair": 99}'), "slider hair must be between -3 and 3"),
    (dict(sliders='{"wings": 1}'), "unknown attribute 'wings'"),
    (dict(sliders='[1, 2]'), "sliders must be a JSON object"),
    (dict(anatomy="x" * 10_000), "at most 400"),
    (dict(anatomy="", style=""), "give an anatomy prompt"),
    (dict(seed=-1), "seed must be between 0"),
    (dict(seed=1.5), "seed must be a whole number"),
    (dict(steps=10_000), "steps must be between"),
    (dict(model="/etc"), "unknown model"),
])
def test_bad_inputs_give_clear_errors_and_the_server_keeps_serving(client, bad, message):
    with pytest.raises(Exception) as caught:
        client.predict(**{**EDIT, **bad}, api_name="/edit")
    assert message in str(caught.value)
    assert "Traceback" not in str(caught.value)
    image, _ = client.predict(**SOURCE, **FAST, api_name="/generate")
    assert is_png(image)


def test_nan_sent_as_a_raw_number_is_refused(app_url, client):
    """gradio_client will not send NaN; a raw HTTP caller can (Python's JSON parser accepts it)."""
    import httpx
    body = '{"data": ["a nevus", "", "", "", "", 0.2, 0, 4, NaN, 3, "", 0.3]}'
    with httpx.Client(base_url=app_url, timeout=30) as http:
        event = http.post("gradio_api/call/edit", content=body,
                          headers={"content-type": "application/json"}).json()["event_id"]
        stream = http.get(f"gradio_api/call/edit/{event}").text
    assert "event: error" in stream and "anatomy strength must be finite" in stream
    image, _ = client.predict(**SOURCE, **FAST, api_name="/generate")
    assert is_png(image)


@pytest.mark.parametrize("settings, message", [
    ("not json", "settings is not valid JSON: Expecting value: line 1 column 1 (char 0) (settings must be the JSON object"),
    ('{"anatomy": "a nevus", "wings": 1}', "unknown settings 'wings'"),
    ('{"anatomy": "a nevus", "steps": 4, "frames": 500}', "frames must be between"),
])
def test_bad_export_settings(client, settings, message):
    with pytest.raises(Exception) as caught:
        client.predict(settings, api_name="/export")
    assert message in str(caught.value)


def test_a_model_that_cannot_load_is_reported_clearly(app_url, micro_model_folder, tmp_path, monkeypatch):
    from app import api, handlers
    missing = str(tmp_path / "missing-model")
    monkeypatch.setenv("MEDEDIT_MODEL", f"{micro_model_folder},{missing}")
    status, info = handlers.load_model(missing)
    assert info is None and "Model not loaded" in status and "missing-model" in status
    with pytest.raises(Exception, match="cannot load model"):
        api.api_generate("a nevus", "", 0, 4, 3, 3, missing)


def test_a_missing_embedded_model_is_explained(monkeypatch, tmp_path):
    from app import handlers, state
    monkeypatch.setattr(state, "EMBEDDED_FOLDER", tmp_path / "not-yet-trained")
    monkeypatch.setenv("MEDEDIT_MODEL", "embedded")
    status, info = handlers.load_model("embedded")
    assert info is None and "embedded model is not installed" in status and "MEDEDIT_MODEL" in status
