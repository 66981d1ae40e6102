import math

import torch

from pipelines.editing.interpolation import bernstein, bezier, bezier_keep_norm


def test_bernstein_weights_sum_to_one():
    ts = torch.linspace(0, 1, 11)
    total = sum(bernstein(5, i, ts) for i in range(6))
    assert torch.allclose(total, torch.ones(11))


def test_bezier_hits_its_end_points_and_is_linear_for_two_points():
    points = torch.randn(4, 3, 2)
    curve = bezier(points, torch.tensor([0.0, 1.0]))
    assert torch.allclose(curve[0], points[0]) and torch.allclose(curve[1], points[-1])
    a, b = torch.randn(5), torch.randn(5)
    mid = bezier(torch.stack([a, b]), torch.tensor([0.25]))[0]
    assert torch.allclose(mid, 0.75 * a + 0.25 * b)


def test_quadratic_bezier_matches_the_closed_form():
    p = torch.randn(3, 7)
    t = 0.3
    expected = (1 - t) ** 2 * p[0] + 2 * (1 - t) * t * p[1] + t**2 * p[2]
    assert torch.allclose(bezier(p, torch.tensor([t]))[0], expected, atol=1e-6)


def test_keep_norm_restores_the_spread_of_gaussian_mixes():
    g = torch.Generator().manual_seed(0)
    points = torch.randn(2, 4, 16, 16, generator=g)
    plain = bezier(points, torch.tensor([0.5]))[0]
    kept = bezier_keep_norm(points, torch.tensor([0.5]))[0]
    assert plain.norm() < 0.8 * points[0].norm()  # the mix shrinks ...
    assert math.isclose(kept.norm().item(), points.flatten(1).norm(dim=1).mean().item(), rel_tol=1e-4)
