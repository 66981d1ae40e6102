"""The app's shared device: one computation at a time, short requests first between steps, and a
time limit that stops a request between steps, between its decoded frames, or while it waits."""

import threading
import time

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
