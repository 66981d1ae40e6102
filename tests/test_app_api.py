"""The app's named endpoints through gradio_client, against a micro random-weight model."""

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")

ROOT = Path(__file__).resolve().parents[1]

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
    assert pixels(figure).shape[1] >= 3 * 256  # the side-by-side's panels enlarged to be read, as the export's
    assert settings["sliders"] == {"hair": 2.5} and settings["seed"] == 3 and settings["swap_at"] == 0.25
    again = client.predict(**EDIT, api_name="/edit")  # reproducible
    assert np.array_equal(pixels(again[1]), after)
    from pipelines.export.images import read_png_provenance
    with open(edited, "rb") as f:
        record = read_png_provenance(f.read())  # the served PNG says what made it
    assert record["seed"] == 3 and record["extra"]["image"] == "edited" and "synthetic" in record["synthetic"]


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
    ("not json", "settings is not valid JSON: Expecting value: line 1 column 1 (char 0) "
                 "(settings must be the JSON object"),
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


# ---------------------------------------------------------------- under load and abuse

SERIES_TOO_BIG = dict(EDIT, steps=100, mode="embedding", frames=64, locality=0)
SLOWEST = dict(SERIES_TOO_BIG, anatomy_scale=3.0, style_scale=4.0)  # the most work a request can ask for
EDIT_PARAMETERS = ("anatomy", "style", "to_anatomy", "to_style", "sliders", "swap_at", "seed", "steps",
                   "anatomy_scale", "style_scale", "model", "locality")
PARAMETERS = {"generate": ("anatomy", "style", "seed", "steps", "anatomy_scale", "style_scale", "model"),
              "edit": EDIT_PARAMETERS,
              "series": EDIT_PARAMETERS[:10] + ("mode", "frames", "control_points", "bend", "model", "locality")}


def raw_call(app_url: str, endpoint: str, data: list, timeout: float = 120) -> str:
    """What a raw HTTP client gets (the SSE stream's text): no client library in between."""
    import httpx
    with httpx.Client(base_url=app_url, timeout=timeout) as http:
        # json.dumps escapes what UTF-8 cannot hold (a lone surrogate), as a hostile client may
        posted = http.post(f"gradio_api/call/{endpoint}", content=json.dumps({"data": data}),
                           headers={"content-type": "application/json"})
        if posted.status_code != 200:
            return f"HTTP {posted.status_code}: {posted.text}"
        return http.get(f"gradio_api/call/{endpoint}/{posted.json()['event_id']}").text


def call_data(endpoint: str = "edit", **changes) -> list:
    """A valid request's values in the endpoint's order, with `changes`."""
    values = {"to_anatomy": "", **EDIT, "anatomy_scale": 3.0, "style_scale": 3.0, "model": "", "locality": 0.3,
              "mode": "latent", "frames": 2, "control_points": 2, "bend": 0.0, **changes}
    return [values[name] for name in PARAMETERS[endpoint]]


def test_identical_requests_at_once_each_get_whole_files_of_their_own(client, app_url):
    from app.outputs import folders
    request = dict(EDIT, seed=21)
    client.predict(**request, api_name="/edit")  # computed once; the rest come from the result cache
    before = set(folders.root.iterdir())
    clients = [gradio_client.Client(app_url, verbose=False) for _ in range(4)]
    outputs = [job.result(timeout=120) for job in [c.submit(**request, api_name="/edit") for c in clients]]
    new = set(folders.root.iterdir()) - before
    assert len(new) == 4  # a folder of its own per response
    for output in outputs:
        assert all(is_png(path) for path in output[:4])
        assert np.array_equal(pixels(output[1]), pixels(outputs[0][1]))
    # Written once: the same request again writes new files and leaves these untouched.
    written = {path: path.stat().st_mtime_ns for folder in new for path in folder.iterdir()}
    client.predict(**request, api_name="/edit")
    assert all(path.stat().st_mtime_ns == stamp for path, stamp in written.items())


def test_a_request_over_the_budget_is_refused_before_any_work(client):
    from app import serving
    began = time.monotonic()
    with pytest.raises(Exception) as caught:
        client.predict(**SERIES_TOO_BIG, api_name="/series")
    message = str(caught.value)
    assert "too much work for this server" in message and "python -m pipelines series --help" in message
    assert f"the limit is {serving.limits.request_budget:,} per request" in message
    settings = {"anatomy": EDIT["anatomy"], "style": EDIT["style"], "steps": 100, "frames": 64, "mode": "embedding",
                "locality": 0}
    with pytest.raises(Exception, match="this export is too much work"):
        client.predict(json.dumps(settings), api_name="/export")
    assert time.monotonic() - began < 10
    image, _ = client.predict(**SOURCE, **FAST, api_name="/generate")
    assert is_png(image)


def wait_until(job, statuses=("PROCESSING", "PROGRESS"), seconds: float = 60):
    """Until the job's status is one of `statuses` (or it ended)."""
    seen = []
    end = time.monotonic() + seconds
    while job.status().code.name not in statuses and not job.done():
        seen.append(job.status().code.name)
        assert time.monotonic() < end, f"the request never reached {statuses}: {sorted(set(seen))}"
        time.sleep(0.05)


def test_an_edit_answers_while_the_largest_series_run(client, app_url):
    """Two series near the budget: one computes in the heavy slot, the other waits for it; an edit
    neither waits in the queue behind them nor behind their computing: it answers long before they end."""
    large = dict(EDIT, steps=20, swap_at=0.25, mode="embedding", frames=40, anatomy_scale=3, style_scale=3)
    began = time.monotonic()
    series = [gradio_client.Client(app_url, verbose=False).submit(**{**large, "seed": 100 + i}, api_name="/series")
              for i in range(2)]
    end = time.monotonic() + 60
    while not any(job.status().code.name in ("PROCESSING", "PROGRESS") for job in series):
        assert time.monotonic() < end, "no series started computing"
        time.sleep(0.05)
    asked = time.monotonic()
    client.predict(**dict(EDIT, seed=31), api_name="/edit")
    edit_seconds = time.monotonic() - asked
    for job in series:
        job.result(timeout=300)
    series_seconds = time.monotonic() - began
    assert edit_seconds < 0.3 * series_seconds, (edit_seconds, series_seconds)


@contextmanager
def strict_app(**limits):
    """A second app with other server limits (they are the process's: restored afterwards)."""
    from app import serving
    from app.ui import build_ui, launch_options
    previous = serving.limits
    demo = build_ui(serving.ServerLimits(**limits))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_options())
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
        serving.configure(previous)


def test_time_limit_and_a_bounded_queue(app_url):
    """One heavy slot, one waiting place: a third request is refused as busy, and a request past
    the time limit stops with a message that says so."""
    with strict_app(request_budget=10**9, time_limit=3, heavy_slots=1, queue_size=1) as url:
        clients = [gradio_client.Client(url, verbose=False) for _ in range(3)]
        running = clients[0].submit(**{**SLOWEST, "seed": 41}, api_name="/series")
        wait_until(running)
        started = time.monotonic()
        waiting = clients[1].submit(**{**SLOWEST, "seed": 42}, api_name="/series")
        wait_until(waiting, ("IN_QUEUE",), seconds=5)
        refused = clients[2].submit(**{**SLOWEST, "seed": 43}, api_name="/series")
        with pytest.raises(Exception, match="[Qq]ueue is full"):
            refused.result(timeout=60)
        with pytest.raises(Exception, match="stopped after 3 s, this server's time limit per request"):
            running.result(timeout=60)
        assert time.monotonic() - started < 3 + 5  # stopped at the first step past the limit
        with pytest.raises(Exception, match="time limit"):
            waiting.result(timeout=60)
        image, _ = clients[2].predict(**SOURCE, **FAST, api_name="/generate")  # still serving
        assert is_png(image)


def test_only_the_newest_responses_stay_on_disk(app_url):
    from app.outputs import folders
    with strict_app(results_kept=3) as url:
        strict = gradio_client.Client(url, verbose=False)
        for seed in range(50, 55):
            image, _ = strict.predict(**SOURCE, seed=seed, **FAST, api_name="/generate")
        kept = list(folders.root.iterdir())
        assert len(kept) == 3
        assert any((folder / "image.png").exists() for folder in kept)


@pytest.mark.parametrize("endpoint", ["generate", "edit", "series"])
@pytest.mark.parametrize("prompt, kind", [(123, "int"), (["a"], "list"), ({"x": 1}, "dict"), (1.5, "float")])
def test_a_prompt_that_is_not_text_is_refused(client, endpoint, prompt, kind):
    request = dict(SOURCE, seed=1, **FAST) if endpoint == "generate" else dict(EDIT)
    with pytest.raises(Exception, match=f"anatomy must be text, got {kind}"):
        client.predict(**{**request, "anatomy": prompt}, api_name=f"/{endpoint}")


@pytest.mark.parametrize("endpoint", ["generate", "edit", "series"])
@pytest.mark.parametrize("text, found", [("a nevus \ud800", "a lone surrogate (U+D800)"),
                                         ("a nevus\x00", "a control character (U+0000)")])
def test_prompts_must_be_plain_text(app_url, endpoint, text, found):
    """Raw HTTP: gradio_client cannot even encode a lone surrogate; a raw client can send one."""
    stream = raw_call(app_url, endpoint, call_data(endpoint, style=text, steps=2))
    assert "event: error" in stream and found in stream and "internal error" not in stream


@pytest.mark.parametrize("settings, message", [
    ('{"anatomy": "a nevus \\ud800", "steps": 4}', "a lone surrogate (U+D800)"),
    ('{"anatomy": "a nevus", "sliders": {"\\ud800": 1}, "steps": 4}', "a lone surrogate (U+D800)"),
    ('{"a":' * 3000 + "1" + "}" * 3000, "nested 3000 levels deep"),
    ('{"anatomy": "a nevus", "sliders": ' + "[" * 5000 + "]" * 5000 + "}", "nested 5001 levels deep"),
])
def test_hostile_export_settings_get_a_specific_message(client, settings, message):
    with pytest.raises(Exception) as caught:
        client.predict(settings, api_name="/export")
    assert message in str(caught.value)


def test_deeply_nested_sliders_get_a_specific_message(client):
    with pytest.raises(Exception, match="sliders JSON is nested 5000 levels deep"):
        client.predict(**{**EDIT, "sliders": "[" * 5000 + "]" * 5000}, api_name="/edit")


HOSTILE = [123, -1, 10**30, 1e308, True, None, "", "x", "\ud800", "a\x00b", "[" * 900, [], ["a"], {"x": 1},
           {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}},
           json.loads("[" * 900 + "]" * 900)]  # as deep as the server's JSON parser takes


@pytest.mark.parametrize("position", range(len(EDIT_PARAMETERS)), ids=EDIT_PARAMETERS)
def test_no_value_a_client_sends_is_an_internal_error(app_url, position):
    """Every parameter of /edit, every kind of hostile value, raw over HTTP: a specific message (or
    a result, where the value happens to be valid), never an internal error."""
    for value in HOSTILE:
        data = call_data("edit", steps=2)
        data[position] = value
        stream = raw_call(app_url, "edit", data)
        assert "event: complete" in stream or "event: error" in stream, stream[:300]
        assert "internal error" not in stream.lower(), (EDIT_PARAMETERS[position], value, stream[:300])
    assert "event: complete" in raw_call(app_url, "edit", call_data("edit", steps=2))


def test_uploads_are_bounded_and_removed_when_their_request_ends(app_url):
    import httpx

    from pipelines.core.limits import MAX_UPLOAD_BYTES
    with httpx.Client(base_url=app_url, timeout=60) as http:
        too_big = http.post("gradio_api/upload", files={"files": ("big.bin", b"\0" * (MAX_UPLOAD_BYTES + 1))})
        assert too_big.status_code == 413
        uploaded = http.post("gradio_api/upload", files={"files": ("prompt.txt", b"a nevus")})
        assert uploaded.status_code == 200
    path = uploaded.json()[0]
    assert os.path.exists(path)
    stream = raw_call(app_url, "edit", call_data("edit", anatomy={"path": path, "meta": {"_type": "gradio.FileData"}}))
    assert "anatomy must be text, got dict" in stream
    assert not os.path.exists(path)


def test_sigterm_removes_the_apps_files(micro_model_folder, tmp_path):
    """`python app.py` stopped by SIGTERM: exit status 143 and its result folders gone."""
    import httpx
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MEDEDIT_MODEL": str(micro_model_folder), "PORT": str(port),
           "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        url, end = f"http://127.0.0.1:{port}/", time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            try:
                if httpx.get(url + "gradio_api/info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < end, "the app did not start"
            time.sleep(0.3)
        gradio_client.Client(url, verbose=False).predict(**EDIT, api_name="/edit")
        roots = list((tmp_path / "gradio").glob("served-*/mededit-results-*"))  # app/server_folders.py
        assert len(roots) == 1 and any(roots[0].iterdir())
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 143
        assert not roots[0].exists()
        assert [p for p in (tmp_path / "gradio").rglob("*") if not p.is_dir()] == []  # no file at all
    finally:
        if server.poll() is None:
            server.kill()
