"""A run's learning curve beside its checkpoints: `curve.jsonl`, a line every CURVE_EVERY steps with
the mean loss since the line before (in this call) and the seconds trained so far. It spans every call of a resumed run (lines
past the step resumed from are dropped first), so a model card can show the whole run's curve."""

import json
from pathlib import Path

CURVE_FILE = "curve.jsonl"
CURVE_EVERY = 50


class LearningCurve:
    def __init__(self, folder, start: int):
        self.path = Path(folder) / CURVE_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = [line for line in read_curve(self.path) if line["step"] <= start]
        self.path.write_text("".join(json.dumps(line) + "\n" for line in kept))
        self.losses: list[float] = []

    def add(self, step: int, loss: float, seconds: float) -> None:
        self.losses.append(loss)
        if step % CURVE_EVERY == 0:
            line = {"step": step, "loss": sum(self.losses) / len(self.losses), "seconds": round(seconds, 1)}
            with self.path.open("a") as f:
                f.write(json.dumps(line) + "\n")
            self.losses = []


def read_curve(path) -> list[dict]:
    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
