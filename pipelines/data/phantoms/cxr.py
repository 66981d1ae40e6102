"""Chest X-ray phantoms after CheXpert: a frontal radiograph built as a density map.

Coordinates: x in [-1, 1] from image left to right (patient's right is image left), y in [0, 1] top
to bottom; one x unit is S/2 pixels, one y unit S pixels. Layers, in this fixed order: body, lungs
(occluded by the heart), vessels, ribs, clavicles, spine, effusion, opacity, support devices,
pacemaker, marker, exposure, noise. Each layer has its own stream and is composited pixel by pixel.
Cardiomegaly enlarges the heart about its own centre, so the enlarged heart covers the normal one
and the pixels that change lie inside the enlarged heart's mask.
"""

import math

import numpy as np

from pipelines.data.phantoms.drawing import (Strokes, bezier, floor_alpha, over, smooth_noise,
                                        smoothstep, stream, unit_grid, white_noise)

SOFT_TISSUE = 0.60


def _px(S: int, x: float, y: float) -> tuple[float, float]:
    return (x + 1) * S / 2, y * S


def _pts(S: int, pts) -> list[tuple[float, float]]:
    return [_px(S, x, y) for x, y in pts]


def _curve(S: int, xs, ys, ss: int = 1) -> list:
    """Flat pixel coordinates [x0, y0, x1, y1, ...] of a curve given as arrays, for ImageDraw.
    With (K, N) arrays, a list of K such curves (one conversion for many curves)."""
    xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    xy = np.empty(xs.shape + (2,))
    xy[..., 0] = (xs + 1) * (S * ss / 2)
    xy[..., 1] = ys * (S * ss)
    return xy.reshape(xs.shape[:-1] + (-1,)).tolist()


class Anatomy:
    """The patient's geometry, from the "anatomy" stream (and the view)."""

    def __init__(self, f: dict, seed: int):
        rng = stream(seed, "anatomy")
        ap = f["view"] == "AP"
        self.ap = ap
        self.W = rng.uniform(0.78, 0.86)  # lateral extent of the lungs
        self.apex = rng.uniform(0.08, 0.11)
        self.dome = rng.uniform(0.68, 0.73) - (0.04 if ap else 0.0)  # patient-left dome
        self.dome_right_lift = rng.uniform(0.015, 0.035)  # the right hemidiaphragm sits higher
        self.medial = rng.uniform(0.14, 0.17)
        self.ctr = rng.uniform(0.39, 0.45)  # normal cardiothoracic ratio
        self.heart_x = rng.uniform(0.08, 0.12)
        self.heart_tilt = rng.uniform(0.3, 0.5)
        self.magnify = 1.05 if ap else 1.0  # AP magnifies the heart a little
        self.tilt = rng.uniform(-0.012, 0.012)
        self.rng = rng

    def side_geometry(self, s: int):
        """(centre, half width, costophrenic y, dome y) of one lung in lateral coordinates a = s*x."""
        dome = self.dome - (self.dome_right_lift if s < 0 else 0.0)
        hw = (self.W - self.medial) / 2
        ac = (self.W + self.medial) / 2
        return ac, hw, dome + 0.09, dome


_CR_T = {}


def _catmull_rom(pts, n: int = 6) -> np.ndarray:
    """A closed smooth curve through the points, as an (N, 2) array."""
    p = np.asarray(pts, dtype=np.float64)
    if n not in _CR_T:
        t = np.linspace(0, 1, n, endpoint=False)
        # Catmull-Rom basis weights of p0..p3 at each t.
        _CR_T[n] = 0.5 * np.stack([-t + 2 * t ** 2 - t ** 3, 2 - 5 * t ** 2 + 3 * t ** 3,
                                   t + 4 * t ** 2 - 3 * t ** 3, -t ** 2 + t ** 3], axis=1)
    w = _CR_T[n]
    idx = np.arange(len(p))
    quad = np.stack([p[idx - 1], p[idx], p[(idx + 1) % len(p)], p[(idx + 2) % len(p)]], axis=1)  # (P, 4, 2)
    return np.einsum("tk,pkd->ptd", w, quad).reshape(-1, 2)


def _lungs(an: Anatomy, S: int) -> np.ndarray:
    """Both lung fields, drawn as smooth outlines with a sharp costophrenic angle."""
    canvas = Strokes(S)
    W, ap = an.W, an.apex
    for s in (-1, 1):
        _, _, cp, dome = an.side_geometry(s)
        m = an.medial
        knob = 0.05 if s > 0 else 0.0  # the aortic knob indents the left lung
        outline = [(m + 0.15, ap), (m + 0.27, ap + 0.012), (m + 0.4, ap + 0.05), (W - 0.1, ap + 0.13),
                   (W - 0.03, 0.3), (W, 0.45), (W + 0.01, cp - 0.1), (W + 0.005, cp - 0.025), (W - 0.003, cp),
                   (W - 0.02, cp - 0.006), (W - 0.08, cp - 0.04), (0.58, dome + 0.012), (0.45, dome),
                   (0.3, dome + 0.008), (m + 0.03, dome + 0.035), (m + 0.01, 0.58), (m, 0.45),
                   (m + knob, 0.32), (m, 0.24), (m + 0.04, ap + 0.04)]
        pts = _catmull_rom([(s * a, yy) for a, yy in outline], 5)
        canvas.draw.polygon(_curve(S, pts[:, 0], pts[:, 1], canvas.ss), fill=255)
    return canvas.alpha(0.7 * S / 128)


def _heart(an: Anatomy, x, y, scale_ctr: float | None) -> np.ndarray:
    ctr = (scale_ctr or an.ctr) * an.magnify
    c, s_ = math.cos(an.heart_tilt), math.sin(an.heart_tilt)
    aspect = 0.75
    # Horizontal extent of the tilted ellipse equals ctr times the thoracic width.
    rx = ctr * (an.W + 0.03) / math.sqrt(c * c + (aspect * s_) ** 2)
    ry = aspect * rx
    # Scaling about a fixed centre keeps every enlarged heart around the normal one.
    hx, hy = an.heart_x, an.dome - 0.05
    dx, dy = x - hx, (y - hy) * 2  # isotropic units
    u, v = c * dx + s_ * dy, -s_ * dx + c * dy
    q = np.sqrt((u / rx) ** 2 + (v / ry) ** 2)
    # The heart sits on the diaphragm: below it, it merges with the abdomen.
    return floor_alpha(smoothstep((1 - q) / 0.12) * smoothstep((an.dome + 0.01 - y) / 0.03))


def _vessels(an: Anatomy, seed: int, S: int) -> np.ndarray:
    """Pulmonary vessel markings: tapering branches fanning out from each hilum."""
    rng = stream(seed, "vessels")
    k = S / 128
    canvas = Strokes(S, ss=1)
    for s in (-1, 1):
        hx, hy = s * rng.uniform(0.2, 0.26), rng.uniform(0.4, 0.46)
        angles = rng.uniform(-1.9, 1.9, 18)
        turns = rng.normal(0, 0.3, (18, 6)).cumsum(axis=1) + angles[:, None]
        steps = rng.uniform(0.05, 0.1, (18, 6))
        xs = hx + s * np.concatenate([np.zeros((18, 1)), (steps * np.cos(turns) * 0.9).cumsum(axis=1)], axis=1)
        ys = hy - np.concatenate([np.zeros((18, 1)), (steps * np.sin(turns) * 0.5).cumsum(axis=1)], axis=1)
        widths = rng.uniform(2.0, 3.2, 18)
        trunks, twigs = _curve(S, xs[:, :3], ys[:, :3]), _curve(S, xs[:, 2:], ys[:, 2:])
        for i in range(18):
            # Two pieces: a thick central trunk and a thin peripheral twig.
            canvas.line_flat(trunks[i], max(0.6, widths[i] * k), int(80 + 40 * widths[i]))
            canvas.line_flat(twigs[i], max(0.6, 0.45 * widths[i] * k), 110)
    return canvas.alpha(0.6 * k)


def _bones(an: Anatomy, S: int) -> np.ndarray:
    """Ribs, clavicles and (in AP) scapulae on one canvas; grey levels encode relative density."""
    rng, k = an.rng, S / 128
    canvas = Strokes(S, ss=1)
    # Scapulae: PA rotates them out of the lung fields.
    lat = 0.0 if an.ap else 0.22
    for s in (-1, 1):
        pts = [(s * (0.52 + lat), 0.13), (s * (0.58 + lat), 0.32), (s * (0.66 + lat), 0.47),
               (s * (0.96 + lat), 0.22), (s * (0.9 + lat), 0.12)]
        canvas.polygon(_pts(S, pts), fill=45)
        canvas.line(_pts(S, pts[:3]), width=max(1.0, 1.2 * k), fill=80)
    gap = (an.dome - an.apex) / 8.5
    a = np.linspace(0.05, an.W + 0.06, 16)
    a2 = np.linspace(an.W + 0.04, 0.3, 10)
    i = np.arange(10)[:, None]
    jitter = rng.normal(0, 0.003, (2, 10, 1))
    wide, thin, thinner, ant = 0.03 * S / 2, max(1.0, 0.9 * k), max(1.0, 0.7 * k), 0.035 * S / 2
    for j, s in enumerate((-1, 1)):
        y0 = an.apex - 0.03 + i * gap + jitter[j]
        # Posterior ribs: up and out from the spine, then curving down along the lateral wall.
        yy = y0 - 0.07 * a + (0.3 + 0.015 * i) * a * a
        xx = np.broadcast_to(s * a, yy.shape)
        # Anterior ribs: fainter, running down and medially from the lateral wall.
        y2 = y0 + 0.17 + 0.3 * np.clip(an.W - a2, 0, None) ** 1.3
        x2 = np.broadcast_to(s * a2, y2.shape)
        for body, top, bottom, front in zip(_curve(S, xx, yy), _curve(S, xx, yy - 0.013),
                                            _curve(S, xx, yy + 0.013), _curve(S, x2, y2)):
            canvas.line_flat(body, wide, 90)
            canvas.line_flat(top, thin, 190)
            canvas.line_flat(bottom, thinner, 150)
            canvas.line_flat(front, ant, 55)
    # Clavicles: sloping up laterally in PA, higher and more horizontal in AP.
    y_med, y_lat = (0.12, 0.10) if an.ap else (0.16, 0.075)
    for s in (-1, 1):
        pts = np.asarray(bezier((s * 0.07, y_med), (s * 0.25, y_med + 0.03), (s * 0.42, y_lat - 0.02),
                                (s * 0.66, y_lat), 14))
        canvas.line_flat(_curve(S, pts[:, 0], pts[:, 1]), 0.055 * S / 2, 255)
    return canvas.alpha(0.5 * k)


def _spine(an: Anatomy, S: int) -> np.ndarray:
    """Vertebral column: separable in x (column, pedicles) and y (bodies and disc spaces)."""
    x, y = unit_grid(S)
    xs, ys = x[0] - an.tilt, y[:, 0]
    column = smoothstep((0.075 - np.abs(xs)) / 0.02)
    pedicle_x = np.exp(-((np.abs(xs) - 0.045) / 0.014) ** 2)
    phase = (ys - 0.02) / 0.052
    discs = np.cos(phase * 2 * math.pi) ** 8
    pedicle_y = np.exp(-(((phase % 1) - 0.35) / 0.18) ** 2)
    return np.outer(0.05 - 0.03 * discs, column) + 0.03 * np.outer(pedicle_y, pedicle_x)


def _body(an: Anatomy, x, y, seed: int, S: int) -> tuple[np.ndarray, np.ndarray]:
    """Density without lungs, and the lung air map (before the heart occludes it)."""
    half = 0.24 + 0.8 * smoothstep((y - 0.0) / 0.16)
    body = smoothstep((half - np.abs(x)) / 0.04)
    # Soft tissue, thicker in the mediastinum and the abdomen.
    T = 0.05 + body * (0.46 + 0.16 * np.exp(-(x / 0.17) ** 2) + 0.1 * smoothstep((y - an.dome) / 0.15))
    lungs = _lungs(an, S)
    # Trachea and main bronchi: dark air column down to the carina.
    carina = 0.34 + 0.02 * (an.dome - 0.7)
    trachea = smoothstep((0.032 - np.abs(x - an.tilt * 0.5)) / 0.012) * smoothstep((carina - y) / 0.02)
    T -= 0.13 * trachea
    # Gastric bubble under the left hemidiaphragm (image right).
    gx, gy = 0.36, an.dome + 0.08
    gastric = smoothstep((1 - np.sqrt(((x - gx) / 0.12) ** 2 + ((y - gy) / 0.04) ** 2)) / 0.3)
    T -= 0.2 * gastric
    return T, lungs


def _effusion(an: Anatomy, f: dict, seed: int, x, y) -> np.ndarray:
    rng = stream(seed, "effusion")
    sides = {"left": (1,), "right": (-1,), "both": (-1, 1)}[f["effusion_side"]]
    alpha = np.zeros_like(x)
    for s in (-1, 1):
        depth = rng.uniform(0.2, 0.34)  # drawn for both sides, so each side's size is stable
        if s not in sides:
            continue
        a = s * x
        ac, hw, cp, dome = an.side_geometry(s)
        t = np.clip((a - (ac - hw)) / (2 * hw), 0, 1)
        top = cp - depth * (0.5 + 0.5 * t * t)  # meniscus: fluid climbs the lateral wall
        fluid = smoothstep((y - top) / 0.06)
        lateral = smoothstep((ac + hw + 0.035 - a) / 0.02) * smoothstep((a - (ac - hw - 0.03)) / 0.03)
        below = smoothstep((cp + 0.08 - y) / 0.06)
        alpha = np.maximum(alpha, fluid * lateral * below)
    return floor_alpha(0.92 * alpha)


def _opacity(an: Anatomy, f: dict, seed: int, x, y, S: int) -> np.ndarray:
    rng = stream(seed, "opacity")
    s = 1 if f["opacity_side"] == "left" else -1
    ac, hw, _, dome = an.side_geometry(s)
    zone = {"upper": (an.apex + 0.12, an.apex + 0.18), "middle": (0.4, 0.47),
            "lower": (dome - 0.13, dome - 0.08)}[f["opacity_zone"]]
    cx = s * (ac + rng.uniform(-0.3, 0.3) * hw)
    cy = rng.uniform(*zone)
    r = rng.uniform(0.12, 0.17)
    dx, dy = x - cx, (y - cy) * 2
    theta = np.arctan2(dy, dx)
    rr = r * (1 + 0.12 * np.cos(2 * theta + rng.uniform(0, 6.3)) + 0.08 * np.cos(3 * theta + rng.uniform(0, 6.3)))
    q = np.sqrt(dx * dx + dy * dy) / rr
    texture = 0.8 + 0.2 * np.clip(smooth_noise(rng, S, 14), -1, 1)
    return floor_alpha(rng.uniform(0.7, 0.85) * smoothstep((1 - q) / 0.55) * texture)


def _support_devices(an: Anatomy, seed: int, S: int) -> np.ndarray:
    rng = stream(seed, "support_devices")
    k = S / 128
    canvas = Strokes(S)
    # Endotracheal tube: a faint plastic tube with a radiopaque stripe, tip above the carina.
    x0, tip = an.tilt * 0.5 + rng.uniform(-0.015, 0.015), rng.uniform(0.22, 0.29)
    tube = bezier((x0 + 0.02, -0.02), (x0 + 0.01, 0.08), (x0, 0.16), (x0, tip), 10)
    canvas.line(_pts(S, tube), width=0.05 * S / 2, fill=120)
    canvas.line(_pts(S, tube), width=max(1.0, 1.1 * k), fill=255)
    # Central venous line from the right internal jugular or subclavian vein into the SVC.
    if rng.random() < 0.5:
        line = bezier((-0.36, 0.0), (-0.28, 0.12), (-0.1, 0.2), (-0.07, rng.uniform(0.36, 0.44)), 16)
    else:
        line = bezier((-0.75, 0.17), (-0.45, 0.12), (-0.12, 0.16), (-0.07, rng.uniform(0.36, 0.44)), 16)
    canvas.line(_pts(S, line), width=max(1.0, 1.5 * k), fill=235)
    # Nasogastric tube down to the stomach, in half the cases.
    if rng.random() < 0.5:
        ng = bezier((0.03, -0.02), (-0.02, 0.4), (0.06, an.dome - 0.05), (0.33, an.dome + 0.09), 20)
        canvas.line(_pts(S, ng), width=max(1.0, 1.6 * k), fill=215)
    return floor_alpha(canvas.alpha())


def _pacemaker(an: Anatomy, seed: int, S: int) -> np.ndarray:
    rng = stream(seed, "pacemaker")
    k = S / 128
    s = 1 if rng.random() < 0.8 else -1  # usually in the patient's left upper chest
    gx, gy = s * rng.uniform(0.46, 0.58), rng.uniform(0.2, 0.25)
    w, h = rng.uniform(0.075, 0.09) * S / 2, rng.uniform(0.045, 0.055) * S
    px, py = _px(S, gx, gy)
    canvas = Strokes(S)
    canvas.rounded_rectangle(px - w, py - h, px + w, py + h, radius=0.45 * h, fill=255)
    canvas.rounded_rectangle(px - 0.6 * w, py - h - 0.35 * h, px + 0.6 * w, py - h + 0.1 * h, radius=0.2 * h, fill=215)
    # Leads: into the subclavian vein, down the SVC, to the right atrium and the right ventricle apex.
    start = (gx - s * 0.02, gy - 0.04)
    svc = (-0.06 + rng.normal(0, 0.01), 0.3)
    ra = (-0.08 + rng.normal(0, 0.02), an.dome - 0.2)
    rv = (0.2 + rng.normal(0, 0.03), an.dome - 0.07)
    lead_w = max(1.0, 1.3 * k)
    to_svc = bezier(start, (s * 0.3, 0.13), (0.0, 0.15), svc, 14)
    canvas.line(_pts(S, to_svc + bezier(svc, (-0.07, 0.4), (-0.1, 0.46), ra, 10)), lead_w)
    to_svc = bezier(start, (s * 0.28, 0.15), (-0.02, 0.17), svc, 14)
    canvas.line(_pts(S, to_svc + bezier(svc, (-0.05, 0.45), (0.0, 0.6), rv, 12)), lead_w)
    for tx, ty in (ra, rv):
        ex, ey = _px(S, tx, ty)
        canvas.ellipse(ex, ey, 1.6 * k + 0.5, 1.6 * k + 0.5)
    return floor_alpha(canvas.alpha())


def _marker(f: dict, seed: int, S: int) -> np.ndarray:
    rng = stream(seed, "marker")
    s = 1 if rng.random() < 0.5 else -1
    h = S * rng.uniform(0.1, 0.12)
    w = 0.62 * h
    cx, cy = _px(S, s * rng.uniform(0.76, 0.84), rng.uniform(0.07, 0.1))
    x0, y0 = cx - w / 2, cy - h / 2
    lw = max(1.2, 0.2 * h)
    canvas = Strokes(S)
    canvas.rounded_rectangle(x0 - 0.35 * w, y0 - 0.2 * h, x0 + 1.35 * w, y0 + 1.2 * h, radius=0.1 * h, fill=70)
    canvas.line([(x0 + lw / 2, y0), (x0 + lw / 2, y0 + h)], lw)
    if f["marker_letter"] == "L":
        canvas.line([(x0 + lw / 2, y0 + h - lw / 2), (x0 + w, y0 + h - lw / 2)], lw)
    else:
        s2 = canvas.ss
        bowl = [(x0 + lw / 2 - 0.5 * w) * s2, (y0 + lw / 2) * s2, (x0 + w - lw / 2) * s2, (y0 + 0.52 * h) * s2]
        canvas.draw.arc(bowl, start=-90, end=90, fill=255, width=int(round(lw * s2)))
        canvas.line([(x0 + 0.3 * w, y0 + 0.5 * h), (x0 + w, y0 + h)], lw)
    return floor_alpha(canvas.alpha())


def render_cxr(f: dict, seed: int, S: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(HxWx3 uint8 greyscale-as-RGB image, masks) for complete, checked factors."""
    x, y = unit_grid(S)
    an = Anatomy(f, seed)

    def empty():
        return np.zeros((S, S), bool)

    T, lungs = _body(an, x, y, seed, S)
    heart = _heart(an, x, y, None)
    if f["cardiomegaly"]:
        heart = _heart(an, x, y, stream(seed, "cardiomegaly").uniform(0.56, 0.66))
    lung_air = lungs * (1 - heart)
    aeration = 1 + 0.05 * smooth_noise(an.rng, S, 4) - 0.12 * np.clip((y - 0.45) / 0.3, 0, 1)
    T -= lung_air * 0.38 * aeration
    T += heart * 0.05
    T += 0.16 * _vessels(an, seed, S) * lung_air
    T += 0.035 * smoothstep(1 - np.sqrt(((np.abs(x) - 0.22) / 0.09) ** 2 + ((y - 0.43) / 0.06) ** 2)) * lung_air
    T += 0.12 * _bones(an, S) * (0.4 + 0.6 * lung_air)
    T += _spine(an, S) * (1 - 0.5 * lung_air)
    masks = {"heart": heart > 0, "cardiomegaly": heart > 0 if f["cardiomegaly"] else empty()}
    masks["effusion"] = empty()
    if f["effusion"]:
        a = _effusion(an, f, seed, x, y)
        over(T, np.maximum(T, SOFT_TISSUE + 0.02), a)  # fluid is as dense as soft tissue, never less
        masks["effusion"] = a > 0
    masks["opacity"] = empty()
    if f["opacity"]:
        a = _opacity(an, f, seed, x, y, S)
        over(T, SOFT_TISSUE + 0.04, 0.85 * a)
        T += 0.1 * a  # extra density, so an opacity behind the heart still shows
        masks["opacity"] = a > 0
    for name, draw in (("support_devices", lambda: _support_devices(an, seed, S)),
                       ("pacemaker", lambda: _pacemaker(an, seed, S)),
                       ("marker", lambda: _marker(f, seed, S))):
        masks[name] = empty()
        if f[name]:
            a = draw()
            over(T, 1.0, a)
            masks[name] = a > 0
    out = np.clip(T, 0, 1) ** f["exposure"]
    sigma = 0.006 + 0.035 * f["noise"]
    out += white_noise(stream(seed, "noise"), S) * sigma
    grey = np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)
    order = ("heart", "effusion", "cardiomegaly", "opacity", "support_devices", "pacemaker", "marker")
    return np.repeat(grey[..., None], 3, axis=2), {name: masks[name] for name in order}
