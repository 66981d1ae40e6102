"""One compute device, shared by every request the app runs.

A request computes only while it holds the device, so at most one computation uses the CPU cores
(or the GPU) at a time. Between denoising steps, and between decoded frames, the device goes to
the waiting request that has held it least so far (least attained service; first come first among
equals): a new edit runs at once, after one step of a long series, and long series share the
device evenly. Each request has a deadline: past it, its next step or decoded frame (or its wait
for a turn) stops it with a clear message.
"""

from __future__ import annotations

import itertools
import threading
import time
from contextlib import contextmanager

from pipelines.core.errors import MedEditError


class TimeLimit(MedEditError):
    """A request ran past its time limit."""


class Turn:
    """One request's claim on the device: its deadline and the device time it has used."""

    def __init__(self, device: "Device", seconds: float, stopped_message: str, order: int):
        self.device, self.seconds, self.stopped_message, self.order = device, seconds, stopped_message, order
        self.deadline = time.monotonic() + seconds
        self.used = 0.0  # seconds holding the device
        self.since = 0.0  # when it last took the device

    def stop(self):
        raise TimeLimit(f"stopped after {self.seconds:g} s, this server's time limit per request"
                        + (f"; {self.stopped_message}" if self.stopped_message else ""))

    def held(self) -> float:
        """Seconds this request has held the device so far (app/timing.py)."""
        with self.device._changed:
            return self.used + (time.monotonic() - self.since if self.device._holder is self else 0.0)

    def between_steps(self, *_):
        """Called after each step and each decoded frame: stop at the deadline; let a request that
        has used less go first."""
        if time.monotonic() > self.deadline:
            self.stop()
        self.device._pass(self)


class Device:
    def __init__(self):
        self._changed = threading.Condition()
        self._waiting: list[Turn] = []
        self._holder: Turn | None = None
        self._order = itertools.count()

    @contextmanager
    def turn(self, seconds: float, stopped_message: str = ""):
        """Hold the device for a request that may run `seconds`; the request calls
        `between_steps()` of the Turn it gets after each step."""
        turn = Turn(self, seconds, stopped_message, next(self._order))
        self._take(turn)
        try:
            yield turn
        finally:
            self._leave(turn)

    def _first(self) -> Turn:
        return min(self._waiting, key=lambda t: (t.used, t.order))

    def _take(self, turn: Turn):
        with self._changed:
            self._waiting.append(turn)
            while self._holder is not None or self._first() is not turn:
                left = turn.deadline - time.monotonic()
                if left <= 0:
                    self._waiting.remove(turn)
                    self._changed.notify_all()
                    turn.stop()
                self._changed.wait(left)
            self._waiting.remove(turn)
            self._holder, turn.since = turn, time.monotonic()

    def _leave(self, turn: Turn):
        with self._changed:
            if self._holder is turn:
                self._holder = None
            elif turn in self._waiting:
                self._waiting.remove(turn)
            self._changed.notify_all()

    def _pass(self, turn: Turn):
        """Count the time held; if a waiting request has used less, let it go first."""
        with self._changed:
            now = time.monotonic()
            turn.used, turn.since = turn.used + now - turn.since, now
            if not any(waiting.used < turn.used for waiting in self._waiting):
                return
            self._holder = None
            self._changed.notify_all()
        self._take(turn)
