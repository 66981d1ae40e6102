"""The app's shared device: one computation at a time, short requests first between steps, and a
time limit that stops a request between steps, between its decoded frames, or while it waits."""

import threading
import time

import numpy as np
import pytest
import torch

from app.device import Device, TimeLimit


def run_steps(device: Device, name: str, steps: int, step_s: float, log: list, seconds: float = 30):
    with device.turn(seconds) as turn:
        for _ in range(steps):
            log.append((name, "start"))
            time.sleep(step_s)
            log.append((name, "end"))
            turn.between_steps()


def test_one_computation_at_a_time_and_a_short_one_goes_first():
    device, log = Device(), []
    long = threading.Thread(target=run_steps, args=(device, "long", 12, 0.02, log))
    long.start()
    time.sleep(0.08)  # the long request holds the device and has used it for a while
    short = threading.Thread(target=run_steps, args=(device, "short", 3, 0.02, log))
    short.start()
    long.join(), short.join()
    running = 0
    for _, what in log:  # steps never overlap
        running += 1 if what == "start" else -1
        assert running in (0, 1)
    order = [name for name, what in log if what == "end"]
    first_short = order.index("short")
    # The short request waits for at most the step in progress, then runs all its steps in a row.
    assert order[first_short:first_short + 3] == ["short"] * 3
    assert order.count("long") == 12 and order[-1] == "long"


def test_two_long_requests_share_the_device():
    device, log = Device(), []
    threads = [threading.Thread(target=run_steps, args=(device, name, 8, 0.01, log)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    order = [name for name, what in log if what == "end"]
    assert order[:8] != ["a"] * 8  # interleaved, not one after the other


def test_the_time_limit_stops_a_request_between_steps():
    device, log = Device(), []
    began = time.monotonic()
    with pytest.raises(TimeLimit, match="stopped after 0.2 s"):
        run_steps(device, "slow", 100, 0.02, log, seconds=0.2)
    assert time.monotonic() - began < 1.0
    with device.turn(1):  # the device was given back
        pass


def test_the_time_limit_stops_a_request_waiting_for_its_turn():
    device, held, release = Device(), threading.Event(), threading.Event()

    def holder():
        with device.turn(30):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    with pytest.raises(TimeLimit):
        with device.turn(0.1):
            pass
    release.set()
    thread.join()


def test_the_time_limit_stops_a_series_between_its_decoded_frames(micro_pipeline):
    """The deadline passes once the denoising is done: the next decoded frame stops the request,
    not the end of all its decodes."""
    from app.jobs import step_callback
    from pipelines.editing.requests import Edit, Sampling, Series

    s = Sampling("a dermoscopic image with melanocytic nevus (NV)", "fair skin", seed=11, steps=2)
    e, frames = Edit(to_style="fair skin, with hairs visible on skin", swap_at=0.5), 8
    device, shown = Device(), []
    with pytest.raises(TimeLimit, match="stopped after 30 s"):
        with device.turn(30) as turn:
            after_step = step_callback(turn, lambda done, **how: shown.append((done, how["unit"])), s.steps, "series")

            def deadline_passes_at_third_frame(step, decoding=None):
                if decoding is not None and step == 3:
                    turn.deadline = time.monotonic()  # what 30 s of a loaded machine would do
                after_step(step, decoding)

            micro_pipeline.series(s, e, Series(frames, "latent"), deadline_passes_at_third_frame)
    assert [unit for _, unit in shown].count("steps") >= s.steps  # every step ran, then the decodes
    assert shown[-1] == ((2, frames), "frames")  # stopped after its third frame, 5 never decoded
    with device.turn(1):  # the device was given back
        pass


def test_decoded_frames_take_turns_and_show_progress(micro_pipeline):
    """Each decoded frame reports (done, total) to the same callback as the steps, and decoding
    with a callback gives the same bits as without."""
    from pipelines.model.loaded import decode

    latents = torch.randn((5, *micro_pipeline.model.latent_shape), generator=torch.Generator().manual_seed(0))
    calls = []
    with_callback = decode(micro_pipeline.model, latents, lambda *args: calls.append(args))
    assert calls == [(i, 5) for i in range(1, 6)]
    assert torch.equal(with_callback, decode(micro_pipeline.model, latents))
    assert torch.equal(with_callback[3:4], decode(micro_pipeline.model, latents[3:4]))  # alone or beside others


def test_the_thread_count_of_a_computation_is_a_server_setting():
    from app import serving
    from pipelines.core.errors import MedEditError

    assert serving.ServerLimits.from_env({}).threads is None  # torch's default unless the host says
    assert serving.ServerLimits.from_env({"MEDEDIT_THREADS": "1"}).threads == 1
    with pytest.raises(MedEditError, match="MEDEDIT_THREADS must be above 0"):
        serving.ServerLimits.from_env({"MEDEDIT_THREADS": "0"})
    threads = torch.get_num_threads()
    previous = serving.configure(serving.ServerLimits(threads=threads + 1))
    try:
        assert torch.get_num_threads() == threads + 1
    finally:
        serving.configure(serving.ServerLimits(threads=threads))
        serving.configure(previous)
    assert torch.get_num_threads() == threads


def test_a_plain_edit_waits_behind_a_long_series_at_most_one_quantum():
    """Two lanes take turns of one quantum of device time: an edit that needs less than a quantum
    waits behind a series for at most the series' quantum and the step in progress."""
    device, quantum, step = Device(quantum=0.2), 0.2, 0.01
    waited, log = [], []
    series = threading.Thread(target=lambda: run_steps_in(device, "heavy", 300, step, log))
    series.start()
    time.sleep(0.3)  # the series has held the device for a while

    def edit():
        with device.turn(30, lane="light") as turn:
            for _ in range(5):
                time.sleep(step)
                turn.between_steps()
            waited.append(turn.waited())

    edits = [threading.Thread(target=edit) for _ in range(3)]
    for thread in edits:  # one after another, each while the series still runs
        thread.start()
        thread.join()
    assert series.is_alive()  # the series was computing through every edit
    series.join()
    assert max(waited) <= quantum + 3 * step + 0.1, waited  # the device's own measure of each wait


def run_steps_in(device: Device, lane: str, steps: int, step_s: float, log: list, seconds: float = 30):
    with device.turn(seconds, lane=lane) as turn:
        for _ in range(steps):
            time.sleep(step_s)
            turn.between_steps()
        log.append(turn.held())


def test_a_series_keeps_half_the_device_under_a_stream_of_edits():
    """A stream of short edits, each with less device time used than the series, no longer takes
    every turn (least attained service alone starved the series until its time limit)."""
    device, stop, held = Device(quantum=0.05), threading.Event(), []

    def edits():
        while not stop.is_set():
            with device.turn(30, lane="light") as turn:
                for _ in range(3):
                    time.sleep(0.01)
                    turn.between_steps()

    def series():
        with device.turn(30, lane="heavy") as turn:
            began = time.monotonic()
            while time.monotonic() - began < 1.5:
                time.sleep(0.01)
                turn.between_steps()
            held.append(turn.held() / (time.monotonic() - began))

    streams = [threading.Thread(target=edits) for _ in range(2)]
    for thread in streams:
        thread.start()
    time.sleep(0.1)  # the edits already hold the device
    series_thread = threading.Thread(target=series)
    series_thread.start()
    series_thread.join()
    stop.set()
    for thread in streams:
        thread.join()
    assert 0.35 <= held[0] <= 0.75, held  # its share of the device while edits kept coming


def test_a_step_of_a_large_batch_is_run_in_pieces_with_the_same_bits(micro_pipeline, monkeypatch):
    """An embedding series' step of many frames runs in forwards of FORWARD_IMAGES images, so a
    waiting request can take the device between them; the frames are the same bits as in one forward."""
    from pipelines.editing import sampling
    from pipelines.editing.requests import Edit, Sampling, Series

    s = Sampling("a dermoscopic image with melanocytic nevus (NV)", "fair skin", seed=12, steps=3)
    e, series = Edit(to_style="fair skin, with hairs visible on skin", swap_at=0.3), Series(12, "embedding")
    calls, threads = [], torch.get_num_threads()
    torch.set_num_threads(1)  # as the server runs (MEDEDIT_THREADS=1)
    try:
        pieces = micro_pipeline.series(s, e, series, lambda *args: calls.append(args))
    finally:
        torch.set_num_threads(threads)
    step_calls = [args for args in calls if len(args) == 1]
    # 12 frames x 3 branches = 36 images: two forwards per tail step, the callback between them.
    tail = s.steps - e.swap_step(s.steps)
    assert len(step_calls) == s.steps + tail  # after every step, and once inside each tail step
    monkeypatch.setattr(sampling, "FORWARD_IMAGES", 10_000)
    torch.set_num_threads(1)
    try:
        whole = micro_pipeline.series(s, e, series)
    finally:
        torch.set_num_threads(threads)
    assert all(np.array_equal(a, b) for a, b in zip(pieces.frames, whole.frames))


def test_the_apps_edit_note_shows_a_short_wait_while_a_long_series_runs(micro_model_folder, monkeypatch):
    """Through the app's own handlers: a large embedding series computes while a plain edit is
    asked; the edit's note (the server's measure of its wait for the device) stays within the
    stated bound, and the series is still computing when the edit answers."""
    import re

    from app import api, handlers, serving

    monkeypatch.setenv("MEDEDIT_MODEL", str(micro_model_folder))
    quantum = 0.2
    old = serving.configure(serving.ServerLimits(request_budget=10**6, lane_quantum=quantum))
    model = str(micro_model_folder)
    form = dict(model=model, anatomy="Normal chest X-ray with no significant findings", style="PA view",
                to_anatomy="", to_style="PA view, with a pacemaker", swap_at=0.3, steps=4,
                anatomy_scale=3.0, style_scale=3.0, locality=0.0)
    try:
        handlers.edit({**form, "seed": 20}, {})  # the model loaded: only the wait differs below
        done = threading.Event()

        def series():
            try:
                api.api_series(form["anatomy"], form["style"], "", "fair skin, with hairs visible on skin", "",
                               0.0, 21, 60, 3.0, 4.0, "embedding", 64, None, None, model, progress=None)
            except Exception:  # noqa: BLE001  # stopped below, once the edit has answered
                pass
            finally:
                done.set()

        thread = threading.Thread(target=series)
        thread.start()
        began = time.monotonic()
        while getattr(serving.device._holder, "lane", None) != "heavy" and time.monotonic() - began < 30:
            time.sleep(0.01)
        time.sleep(1.0)  # the series has held the device for well over a quantum
        note = handlers.edit({**form, "seed": 22}, {})["notes"]
        still_running = not done.is_set()
        with serving.device._changed:  # the series' deadline now: it stops at its next step
            for turn in [serving.device._holder, *serving.device._waiting]:
                if turn is not None and turn.lane == "heavy":
                    turn.deadline = 0.0
        thread.join()
    finally:
        serving.configure(old)
    def seconds(words):
        found = re.search(rf"(\d+\.\d\d) s {words}", note)
        return float(found.group(1)) if found else 0.0

    assert still_running, "the series ended before the edit answered: it was not long enough to test"
    # The lanes alternate: for each quantum the edit holds the device, the series holds one; so
    # the wait is at most the edit's own device time (computing and writing) and one quantum more,
    # give or take a step of each per turn.
    own = seconds("computing") + seconds("writing the files")
    assert seconds("waiting for other requests") <= own + quantum + 0.3, note


def test_an_uploaded_images_series_step_is_run_in_pieces_with_the_same_bits(micro_pipeline, monkeypatch):
    """/series_image's embedding series (every frame's tail in one batch, each frame the source's
    branches and every edit term's) runs in forwards of FORWARD_IMAGES images too, the callback
    between them: the device can change hands inside its steps as inside /series', for the same bits."""
    from pipelines.editing import sampling
    from pipelines.editing.requests import Edit, Sampling, Series

    image = np.random.default_rng(5).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    s = Sampling("a dermoscopic image with melanocytic nevus (NV)", "fair skin", seed=13, steps=3)
    e, series = Edit(to_style="fair skin, with hairs visible on skin", swap_at=0.3), Series(12, "embedding")
    calls, threads = [], torch.get_num_threads()
    torch.set_num_threads(1)  # as the server runs (MEDEDIT_THREADS=1)
    try:
        pieces = micro_pipeline.series_image(image, s, e, series, progress=lambda *args: calls.append(args))
    finally:
        torch.set_num_threads(threads)
    step_calls = [args for args in calls if len(args) == 1]
    # The inversion's steps once each; then the tail: 12 frames x 3 images or more a forward, so
    # each of its forwards (the swap step's, and each later step's) is called back in between.
    tail = s.steps - e.swap_step(s.steps)
    assert len(step_calls) > s.steps + tail, step_calls
    monkeypatch.setattr(sampling, "FORWARD_IMAGES", 10_000)
    torch.set_num_threads(1)
    try:
        whole = micro_pipeline.series_image(image, s, e, series)
    finally:
        torch.set_num_threads(threads)
    assert all(np.array_equal(a, b) for a, b in zip(pieces.frames, whole.frames))
