"""The app's notes tell the truth about time: a cached answer says it came from the cache, the time
is the whole request's (files written included), and the wait for other requests is told apart
from the computing (app/timing.py).

The edit handler runs in-process on the micro model; another request is stood in for by holding
the shared device from a thread.
"""

import re
import threading
import time

import pytest

from app.timing import Timing
from tests.held_device import HeldDevice


class FakeTurn:
    def __init__(self, held):
        self.held = lambda: held


def timing_of(started_ago, asked_ago, held_computing, held_now, cached=False, first=0.0):
    now = time.monotonic()
    timing = Timing(started=now - started_ago, asked=now - asked_ago, turn=FakeTurn(held_now),
                    held_computing=held_computing, cached=cached, first_seconds=first)
    return timing


def test_the_note_splits_waiting_computing_and_writing():
    note = timing_of(3.0, 2.9, held_computing=1.2, held_now=1.5).note()
    total = float(re.search(r"this request took (\d+\.\d\d) s", note).group(1))
    assert total == pytest.approx(3.0, abs=0.02) and seconds(note, "computing") == 1.2
    assert seconds(note, "waiting for other requests") == pytest.approx(1.4, abs=0.02)
    assert seconds(note, "writing the files") == pytest.approx(0.3)
    assert seconds(note, "checking the request and loading the model") == pytest.approx(0.1, abs=0.02)


def test_a_cached_answer_says_so_and_does_not_claim_computing():
    note = timing_of(0.2, 0.19, held_computing=0.0, held_now=0.1, cached=True, first=2.74).note()
    assert note.startswith("from the cache (computed earlier in 2.74 s); this request took 0.20 s")
    assert "computing" not in note


@pytest.fixture()
def micro_app(micro_model_folder, monkeypatch):
    monkeypatch.setenv("MEDEDIT_MODEL", str(micro_model_folder))
    from app import serving
    old = serving.configure(serving.ServerLimits())
    yield str(micro_model_folder)
    serving.configure(old)


def edit_form(model, seed):
    return dict(model=model, anatomy="Normal chest X-ray with no significant findings", style="PA view",
                to_anatomy="", to_style="PA view, with a pacemaker", swap_at=0.3, seed=seed, steps=4,
                anatomy_scale=3.0, style_scale=3.0, locality=0.0)


def seconds(note: str, words: str) -> float:
    found = re.search(rf"(\d+\.\d\d) s {words}", note)
    return float(found.group(1)) if found else 0.0


def test_a_cached_generate_runs_through_the_same_timing(micro_app):
    """/generate's result is a bare image; asked twice, the second comes from the cache."""
    from app import api

    args = ("Normal chest X-ray with no significant findings", "PA view", 14, 4, 3.0, 3.0, micro_app)
    first, again = api.api_generate(*args, progress=None), api.api_generate(*args, progress=None)
    untimed = lambda settings: {k: v for k, v in settings.items() if k != "timing"}  # noqa: E731
    assert untimed(first[1]) == untimed(again[1])
    # Each answer's own time on the server (not its files'): the cached one computed nothing now.
    assert again[1]["timing"]["computing"] < first[1]["timing"]["computing"]
    assert again[1]["timing"]["total"] >= again[1]["timing"]["computing"]


def test_the_edit_note_is_the_requests_time_then_from_the_cache(micro_app):
    from app import handlers

    form = edit_form(micro_app, seed=11)
    began = time.monotonic()
    first = handlers.edit(form, {})["notes"]
    wall = time.monotonic() - began
    said = float(re.search(r"this request took (\d+\.\d\d) s", first).group(1))
    assert said <= wall + 0.01 and seconds(first, "computing") > 0
    assert "from the cache" not in first and "of pixels changed visibly" in first

    again = handlers.edit(form, {})["notes"]
    assert "from the cache (computed earlier in" in again and "computing" not in again


def test_a_wait_for_another_request_is_told_apart_from_the_computing(micro_app):
    from app import handlers

    handlers.edit(edit_form(micro_app, seed=12), {})  # the model loaded, so only the wait differs
    with HeldDevice() as other:
        threading.Timer(1.0, other.release.set).start()
        note = handlers.edit(edit_form(micro_app, seed=13), {})["notes"]
    assert seconds(note, "waiting for other requests") >= 0.9
    assert seconds(note, "computing") < seconds(note, "waiting for other requests")
    total = float(re.search(r"this request took (\d+\.\d\d) s", note).group(1))
    assert total >= seconds(note, "waiting for other requests") + seconds(note, "computing") - 0.02


def test_an_api_answers_timing_is_its_own_and_goes_back_to_export_with_its_settings(micro_app):
    """/edit's settings carry the request's own timing (not its files), and /export takes those
    settings back as they came."""
    import json
    import zipfile

    from app import api

    f = edit_form(micro_app, seed=15)
    *files, settings = api.api_edit(f["anatomy"], f["style"], f["to_anatomy"], f["to_style"], "", f["swap_at"],
                                    f["seed"], f["steps"], f["anatomy_scale"], f["style_scale"], micro_app,
                                    progress=None)
    timing = settings["timing"]
    assert set(timing) == {"total", "before", "waiting", "behind_series", "computing", "writing"}
    assert timing["total"] >= timing["computing"] > 0 and timing["behind_series"] == 0.0
    from PIL import Image
    with Image.open(files[1]) as png:  # the files' provenance is the request's, not its time
        assert png.text and "behind_series" not in json.dumps(png.text)
    with zipfile.ZipFile(api.api_export(json.dumps(settings), progress=None)) as archive:
        assert "timing" not in archive.read("manifest.json").decode()


def test_the_uis_export_writes_its_zip_without_waiting_for_the_device(micro_app):
    """The UI's export has its frames already decoded: its ZIP is written while another request
    holds the device, not after it (the event's heavy lane bounds how many are written at once)."""
    import zipfile

    from app import handlers

    session = handlers.edit(edit_form(micro_app, seed=16), {})["session"]
    with HeldDevice(lane="heavy", seconds=30) as other:
        path = handlers.export("edit", session)["value"]
        still_held = not other.leaving.is_set()
    assert still_held
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None and "manifest.json" in archive.namelist()
