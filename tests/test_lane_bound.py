"""The stated bound on a plain edit's wait behind a series (app/device.py), checked on a clock the
test moves: only the request holding the device runs a step and moves the clock by the step's
length, so every turn, wait and share is exact and the same on every run, whatever the machine's
load. The rule: a request computing c seconds, alone in its lane, waits behind the other lane for
at most ceil(c / quantum) of its turns, each at most one quantum and one of its steps."""

import math
import threading
import time

import pytest

from app.device import Device


class Clock:
    """Seconds of device time: moved only by the request that holds the device."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_steps(device: Device, clock: Clock, name: str, lane: str, steps: list[float], log: list,
              after_step=None, turns: dict | None = None):
    """A request of `steps` (their lengths), logging (name, start, end) of each; `after_step(i)`
    runs while it holds the device, after step i. As the app's requests do (app/jobs.step_callback),
    the device may change hands after every step but the last."""
    with device.turn(10_000, lane=lane) as turn:
        if turns is not None:
            turns[name] = turn
        for i, length in enumerate(steps):
            began = clock.now
            clock.now += length
            log.append((name, began, clock.now))
            if after_step is not None:
                after_step(i)
            turn.between_steps() if i < len(steps) - 1 else turn.after_last_step()


def wait_until_waiting(device: Device, lane: str):
    """Until a request of `lane` waits for the device (its thread has asked for a turn)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with device._changed:
            if any(turn.lane == lane for turn in device._waiting):
                return
        time.sleep(0.001)
    raise AssertionError(f"no {lane} request came to wait for the device")


def turns_of(log: list) -> list[tuple[str, float, float]]:
    """The device's turns: (holder, start, end) of each run of steps by one request."""
    runs = []
    for name, began, ended in log:
        if runs and runs[-1][0] == name:
            runs[-1] = (name, runs[-1][1], ended)
        else:
            runs.append((name, began, ended))
    return runs


def edit_during_series(quantum: float, series_step: float, edit_steps: list[float], arrive_after: int):
    """A long series (heavy) computing; after its `arrive_after`-th step a plain edit (light) asks
    for the device. Returns the log, the edit's turn and when it asked."""
    clock = Clock()
    device, log, turns = Device(quantum=quantum, clock=clock), [], {}
    asked = []

    def edit():
        run_steps(device, clock, "edit", "light", edit_steps, log, turns=turns)

    editor = threading.Thread(target=edit)

    def arrive(i):
        if i == arrive_after:
            asked.append(clock.now)
            editor.start()
            wait_until_waiting(device, "light")

    series = threading.Thread(target=run_steps, args=(device, clock, "series", "heavy",
                                                      [series_step] * 400, log, arrive, turns))
    series.start()
    series.join(60)
    editor.join(60)
    assert not series.is_alive() and not editor.is_alive()
    return log, turns["edit"], asked[0]


@pytest.mark.parametrize("edit_seconds", [0.5, 1.0, 1.5, 3.0])
@pytest.mark.parametrize("series_step", [0.25, 0.75])
def test_a_plain_edit_waits_behind_a_series_at_most_its_turns_bound(edit_seconds, series_step):
    quantum, edit_step = 1.0, 0.125
    steps = [edit_step] * round(edit_seconds / edit_step)
    log, edit, asked = edit_during_series(quantum, series_step, steps, arrive_after=9)
    done = max(ended for name, _, ended in log if name == "edit")
    during = [(name, max(began, asked), min(ended, done)) for name, began, ended in turns_of(log)
              if ended > asked and began < done]
    series_turns = [ended - began for name, began, ended in during if name == "series"]
    # The rule: at most ceil(c / quantum) turns of the series, each at most a quantum and a step.
    assert len(series_turns) == math.ceil(edit_seconds / quantum), during
    assert all(length <= quantum + series_step for length in series_turns), during
    bound = math.ceil(edit_seconds / quantum) * (quantum + series_step)
    assert 0 < edit.behind["heavy"] <= bound
    # The edit's own record of its wait behind the series is the series' time on the device.
    assert edit.behind["heavy"] == pytest.approx(sum(series_turns))
    assert edit.behind["light"] == 0.0 and edit.used == pytest.approx(edit_seconds)
    # The series went on computing after the edit: the edit's wait was not the series' end.
    assert any(name == "series" and began >= done for name, began, _ in log)


def test_a_stream_of_short_edits_each_waits_one_turn_at_most_and_the_series_keeps_half():
    """Edits of 0.5 s, each asked at the series' first step after the last one ended: each waits
    behind the series for one turn at most (a quantum and a step), and the series holds at least
    half the device meanwhile (a stream of edits does not starve it)."""
    clock, quantum, series_step, edits, edit_steps = Clock(), 1.0, 0.25, 6, 4
    device, log, turns, threads = Device(quantum=quantum, clock=clock), [], {}, []

    def next_edit(i):
        previous_done = not threads or sum(name == f"edit{len(threads) - 1}" for name, _, _ in log) == edit_steps
        if i >= 3 and previous_done and len(threads) < edits:
            name = f"edit{len(threads)}"
            thread = threading.Thread(target=run_steps, args=(device, clock, name, "light", [0.125] * edit_steps,
                                                              log), kwargs={"turns": turns})
            threads.append(thread)
            thread.start()
            wait_until_waiting(device, "light")

    run_steps(device, clock, "series", "heavy", [series_step] * 60, log, next_edit)
    for thread in threads:
        thread.join(60)
    assert len(threads) == edits and all(not thread.is_alive() for thread in threads)
    waits = [turns[f"edit{k}"].behind["heavy"] for k in range(edits)]
    assert all(0 < wait <= quantum + series_step for wait in waits), waits
    first = min(began for name, began, _ in log if name.startswith("edit"))
    last = max(ended for name, _, ended in log if name.startswith("edit"))
    series_time = sum(min(ended, last) - max(began, first) for name, began, ended in log
                      if name == "series" and ended > first and began < last)
    assert series_time >= 0.5 * (last - first), (series_time, last - first)
