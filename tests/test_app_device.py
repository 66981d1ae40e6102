"""The app's shared device: one computation at a time, short requests first between steps, and a
time limit that stops a request between steps or while it waits."""

import threading
import time

import pytest

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
