"""One compute device, shared by every request the app runs.

A request computes only while it holds the device, so at most one computation uses the CPU cores
(or the GPU) at a time. Requests come in two lanes: "light" (generate, edit) and "heavy" (series,
export). While both lanes want the device they take turns of `quantum` seconds of device time
each (1 s by default), so a plain edit waits behind a series for at most one quantum and one of
the series' steps per quantum of its own computing, and a series still gets half the device however
many edits arrive (a series behind a stream of short requests would otherwise never finish in its
time limit). Within a lane, the waiting request that has held the device least goes first (least
attained service; first come first among equals). The device changes hands only between denoising
steps, between batches of one step (pipelines/editing/sampling.FORWARD_IMAGES) and between decoded
frames. Each request has a deadline: past it, its next step or decoded frame (or its wait for a
turn) stops it with a clear message.

The bound, as a rule (tests/test_lane_bound.py checks it on a clock the test moves): a request
whose own computing takes c seconds of device time, alone in its lane, waits behind the other lane
for at most ceil(c / quantum) of that lane's turns, each at most one quantum and one of its steps
(or decoded frames, or forwards of a batch): a plain edit of c <= 1 s waits behind a series for at
most 1 s and one of the series' steps. Each request records how long it waited behind each lane
(`Turn.behind`), so the bound can be read off every request's own timing (app/timing.py).
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

    def __init__(self, device: "Device", seconds: float, stopped_message: str, order: int, lane: str):
        self.device, self.seconds, self.stopped_message, self.order = device, seconds, stopped_message, order
        self.lane = lane
        self.asked = device.clock()
        self.deadline = self.asked + seconds
        self.used = 0.0  # seconds holding the device
        self.since = 0.0  # when it last took the device
        self.waiting_since = self.asked  # when it last began to wait for the device
        self.behind = dict.fromkeys(LANES, 0.0)  # seconds it waited while a request of each lane held it

    def stop(self):
        raise TimeLimit(f"stopped after {self.seconds:g} s, this server's time limit per request"
                        + (f"; {self.stopped_message}" if self.stopped_message else ""))

    def held(self) -> float:
        """Seconds this request has held the device so far (app/timing.py)."""
        with self.device._changed:
            return self.used + (self.device.clock() - self.since if self.device._holder is self else 0.0)

    def waited(self) -> float:
        """Seconds this request has waited for the device since it asked (other requests' turns)."""
        return max(0.0, self.device.clock() - self.asked - self.held())

    def between_steps(self, *_):
        """Called after each step and each decoded frame: stop at the deadline; let a request that
        has used less go first."""
        if self.device.clock() > self.deadline:
            self.stop()
        self.device._pass(self)

    def after_last_step(self):
        """Called after the request's last step instead: stop at the deadline, but keep the device
        until the request leaves it (handing it over now would make the request wait a whole turn
        of the other lane with nothing left to compute)."""
        if self.device.clock() > self.deadline:
            self.stop()


LANES = ("light", "heavy")


class Device:
    def __init__(self, quantum: float = 1.0, clock=time.monotonic):
        self.quantum = quantum  # seconds of device time a lane holds while the other lane waits
        self.clock = clock  # seconds; a test passes one it moves itself
        self._changed = threading.Condition()
        self._waiting: list[Turn] = []
        self._holder: Turn | None = None
        self._order = itertools.count()
        self._lane, self._served = "light", 0.0  # the lane being served, and its time since the other waited

    @contextmanager
    def turn(self, seconds: float, stopped_message: str = "", lane: str = "light"):
        """Hold the device for a request that may run `seconds` in `lane` ("light" or "heavy");
        the request calls `between_steps()` of the Turn it gets after each step."""
        if lane not in LANES:
            raise ValueError(f"lane must be one of {LANES}, got {lane!r}")
        turn = Turn(self, seconds, stopped_message, next(self._order), lane)
        self._take(turn)
        try:
            yield turn
        finally:
            self._leave(turn)

    def _first(self, holder: Turn | None = None) -> Turn:
        """Who holds the device next, among the waiting and `holder`: the served lane until its
        quantum is used while the other lane waits, then the other lane."""
        candidates = self._waiting + ([holder] if holder is not None else [])
        lanes = {t.lane for t in candidates}
        if self._lane not in lanes or (len(lanes) == 2 and self._served >= self.quantum):
            self._lane, self._served = next(lane for lane in LANES if lane != self._lane), 0.0
        return min((t for t in candidates if t.lane == self._lane), key=lambda t: (t.used, t.order))

    def _count(self, turn: Turn):
        """The device time `turn` held since it last took it, for it, for each waiting request's
        wait behind its lane and, while the other lane waits, for its lane's quantum."""
        now = self.clock()
        held = now - turn.since
        for waiting in self._waiting:
            waiting.behind[turn.lane] += max(0.0, now - max(turn.since, waiting.waiting_since))
        turn.used, turn.since = turn.used + held, now
        if any(waiting.lane != turn.lane for waiting in self._waiting):
            self._served += held

    def _take(self, turn: Turn):
        with self._changed:
            self._waiting.append(turn)
            turn.waiting_since = self.clock()
            while self._holder is not None or self._first() is not turn:
                left = turn.deadline - self.clock()
                if left <= 0:
                    self._waiting.remove(turn)
                    self._changed.notify_all()
                    turn.stop()
                self._changed.wait(left)
            self._waiting.remove(turn)
            self._holder, turn.since = turn, self.clock()

    def _leave(self, turn: Turn):
        with self._changed:
            if self._holder is turn:
                self._count(turn)
                self._holder = None
            elif turn in self._waiting:
                self._waiting.remove(turn)
            self._changed.notify_all()

    def _pass(self, turn: Turn):
        """Count the time held; if a waiting request goes first (the other lane's quantum, or one
        that has used less in this lane), let it."""
        with self._changed:
            self._count(turn)
            if not self._waiting or self._first(turn) is turn:
                return
            self._holder = None
            self._changed.notify_all()
        self._take(turn)
