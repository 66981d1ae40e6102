"""Learning rates by step: each returns the rate of step `step` (0-based) for a base rate `lr`."""

import math


def constant(lr: float, step: int) -> float:
    return lr


def cosine(lr: float, step: int, steps: int) -> float:
    """From lr down to zero over `steps` along half a cosine."""
    return lr * 0.5 * (1 + math.cos(math.pi * step / steps))


def warm_up(lr: float, step: int, warm_steps: int = 200) -> float:
    """Linear warm-up over `warm_steps`, then constant: a run cut short by a time limit is the
    same as one asked for the steps it did."""
    return lr * min(1.0, (step + 1) / warm_steps)


def warm_up_cosine(lr: float, step: int, steps: int) -> float:
    """Linear warm-up over the first 5% of steps, then half a cosine down to zero."""
    warm = max(1, steps // 20)
    if step < warm:
        return lr * ((step + 1) / warm)
    return lr * (0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, steps - warm)))))
