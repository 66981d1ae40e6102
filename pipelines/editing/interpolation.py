"""Bezier curves and norm-keeping mixes of tensors. No model in here."""

import math

import torch


def bernstein(degree: int, i: int, t: torch.Tensor) -> torch.Tensor:
    return math.comb(degree, i) * t**i * (1 - t) ** (degree - i)


def bezier(points: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    """Points [P, ...] on the curve at times ts [T] in [0, 1]: [T, ...]."""
    degree = points.shape[0] - 1
    weights = torch.stack([bernstein(degree, i, ts) for i in range(degree + 1)], 1)  # [T, P]
    return torch.einsum("tp,p...->t...", weights.to(points.dtype), points)


def bezier_keep_norm(points: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    """Bezier of the points, each result rescaled to the same Bezier mix of the points' norms.

    A mix of independent Gaussian-like latents has a smaller spread than its ends (a midpoint of
    two has 1/sqrt(2) of it), which decodes washed-out; keeping the interpolated norm avoids that.
    """
    curve = bezier(points, ts)
    dims = tuple(range(1, points.dim()))
    norms = points.flatten(1).norm(dim=1)  # [P]
    target = bezier(norms, ts)  # [T]
    current = curve.flatten(1).norm(dim=1).clamp(min=1e-8)
    return curve * (target / current).view(-1, *([1] * len(dims)))
