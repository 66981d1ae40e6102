"""How long a request really took, told apart for its notes: the wait for the device (other
requests' turns, before it starts and between its steps; how much of it behind the heavy lane's
series and exports), the computing, the writing of its files (after the device is given back:
app/jobs.py), and whether the answer came from the result cache (app/state.py), when nothing was
computed now.

Measured from the moment the handler starts; gradio's own queue before that is not seen here (a
client sees it as its own time less `total`: scripts/loadtest.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

SHOWN_FROM = 0.05  # seconds; a shorter part of the request is left out of the note


@dataclass
class Timing:
    started: float = field(default_factory=time.monotonic)  # the handler began
    asked: float | None = None  # it asked for the device (after the checks and any model load)
    turn: object = None  # app/device.Turn, while the request holds or waits for the device
    held_computing: float = 0.0  # device time when the result was there
    cached: bool = False  # the result came from the cache: nothing was computed for this request
    first_seconds: float = 0.0  # from the cache: how long computing it took the first time
    released: float | None = None  # when it gave the device back (its files are written after)

    def result_ready(self, result, cached: bool) -> None:
        self.held_computing, self.cached = self.turn.held(), cached
        # A generated image is a bare array: it has no time of its own to tell.
        self.first_seconds = getattr(result, "seconds", 0.0) if cached else 0.0

    def parts(self) -> dict[str, float]:
        """Seconds so far: total, before (checks, loading a model), waiting (behind_series: of it,
        while the heavy lane held the device), computing, writing."""
        now = time.monotonic()
        held = self.turn.held()
        on_device_until = now if self.released is None else self.released
        behind = getattr(self.turn, "behind", {})
        return {"total": now - self.started, "before": self.asked - self.started,
                "waiting": max(0.0, on_device_until - self.asked - held),
                "behind_series": behind.get("heavy", 0.0), "computing": self.held_computing,
                "writing": held - self.held_computing + (now - on_device_until)}

    def record(self) -> dict[str, float]:
        """The parts, in milliseconds' precision, for an API answer's settings ("timing")."""
        return {key: round(value, 3) for key, value in self.parts().items()}

    def note(self, prefix_cached: bool = False) -> str:
        """One line: what the request took, its parts; from the cache, say so."""
        p = self.parts()
        if self.cached:
            head = (f"from the cache (computed earlier in {self.first_seconds:.2f} s); "
                    f"this request took {p['total']:.2f} s on the server")
            shown = []
        else:
            computing = f"{p['computing']:.2f} s computing"
            if prefix_cached:
                computing += " (shared prefix reused from the cache)"
            head, shown = f"this request took {p['total']:.2f} s on the server", [computing]
        behind = f" ({p['behind_series']:.2f} s of it behind series and exports)" \
            if p["behind_series"] >= SHOWN_FROM else ""
        shown += [f"{p[key]:.2f} s {words}" for key, words in (
            ("waiting", f"waiting for other requests{behind}"), ("writing", "writing the files"),
            ("before", "checking the request and loading the model")) if p[key] >= SHOWN_FROM]
        return head + (": " + ", ".join(shown) if shown else "")
