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

from pipelines.phantoms.drawing import (Strokes, bezier, blur, floor_alpha, over, smooth_noise,
                                        smoothstep, stream, unit_grid)

SOFT_TISSUE = 0.60


def _px(S: int, x: float, y: float) -> tuple[float, float]:
    return (x + 1) * S / 2, y * S


def _pts(S: int, pts) -> list[tuple[float, float]]:
    return [_px(S, x, y) for x, y in pts]


class Anatomy:
    """The patient's geometry, from the "anatomy" stream (and the view)."""

    def __init__(self, f: dict, seed: int):
        rng = stream(seed, "anatomy")
        ap = f["view"] == "AP"
        self.ap = ap
        self.W = rng.uniform(0.76, 0.84)  # lateral extent of the lungs
        self.apex = rng.uniform(0.09, 0.12)
        self.dome = rng.uniform(0.69, 0.74) - (0.045 if ap else 0.0)  # patient-left dome
        self.dome_right_lift = rng.uniform(0.015, 0.035)  # the right hemidiaphragm sits higher
        self.medial = rng.uniform(0.11, 0.14)
        self.ctr = rng.uniform(0.39, 0.45)  # normal cardiothoracic ratio
        self.heart_x = rng.uniform(0.07, 0.12)
        self.heart_tilt = rng.uniform(-0.25, -0.1)
        self.magnify = 1.05 if ap else 1.0  # AP magnifies the heart a little
        self.tilt = rng.uniform(-0.015, 0.015)
        self.rng = rng

    def side_geometry(self, s: int):
        """(centre, half width, costophrenic y, dome y) of one lung in lateral coordinates a = s*x."""
        dome = self.dome - (self.dome_right_lift if s < 0 else 0.0)
        hw = (self.W - self.medial) / 2
        ac = (self.W + self.medial) / 2
        return ac, hw, dome + 0.1, dome


def _lung(an: Anatomy, x: np.ndarray, y: np.ndarray, s: int) -> np.ndarray:
    a = s * x
    ac, hw0, _, dome = an.side_geometry(s)
    hh = 0.2
    yc = an.apex + hh
    hw = hw0 + 0.035 * np.clip((y - yc) / 0.4, 0, 1)
    qy = np.minimum(y - yc, 0) / hh
    q = np.sqrt(((a - ac) / hw) ** 2 + qy * qy)
    e = 0.012
    inside = smoothstep((1 - q) * hw0 / e)
    t = (a - ac) / hw0
    diaphragm = dome + np.where(t > 0, 0.105, 0.05) * t * t
    return inside * smoothstep((diaphragm - y) / e)


def _heart(an: Anatomy, x, y, scale_ctr: float | None) -> np.ndarray:
    ctr = (scale_ctr or an.ctr) * an.magnify
    rx = ctr * (an.W + 0.03)
    ry = 0.42 * rx
    # Scaling about a fixed centre keeps every enlarged heart around the normal one.
    hx, hy = an.heart_x, an.dome - 0.10
    c, s_ = math.cos(an.heart_tilt), math.sin(an.heart_tilt)
    dx, dy = x - hx, (y - hy) * 2  # isotropic units
    u, v = c * dx + s_ * dy, -s_ * dx + c * dy
    q = np.sqrt((u / rx) ** 2 + (v / (2 * ry)) ** 2)
    return floor_alpha(smoothstep((1 - q) / 0.05))


def _vessels(an: Anatomy, seed: int, S: int) -> np.ndarray:
    rng = stream(seed, "vessels")
    k = S / 128
    canvas = Strokes(S, ss=1)
    for s in (-1, 1):
        hx, hy = s * rng.uniform(0.2, 0.26), rng.uniform(0.4, 0.46)
        for _ in range(14):
            ang = rng.uniform(-1.9, 1.9)  # fan out: up, lateral and down
            x, y, width = hx, hy, rng.uniform(2.0, 3.2)
            for _ in range(5):
                length = rng.uniform(0.05, 0.1)
                ang += rng.normal(0, 0.3)
                nx, ny = x + s * length * math.cos(ang) * 0.9, y - length * math.sin(ang) * 0.5
                canvas.line(_pts(S, [(x, y), (nx, ny)]), width=max(0.6, width * k), fill=int(80 + 40 * width))
                x, y, width = nx, ny, width * 0.72
    return canvas.alpha(0.6 * k)


def _ribs(an: Anatomy, S: int) -> np.ndarray:
    rng, k = an.rng, S / 128
    canvas = Strokes(S, ss=1)
    gap = (an.dome - an.apex) / 9.2
    for s in (-1, 1):
        for i in range(10):
            y0 = an.apex - 0.01 + i * gap + rng.normal(0, 0.003)
            a = np.linspace(0.04, an.W + 0.06, 14)
            yy = y0 - 0.045 * a + (0.11 + 0.01 * i) * a * a
            pts = _pts(S, zip(s * a, yy))
            canvas.line(pts, width=0.032 * S / 2, fill=110)
            top = _pts(S, zip(s * a, yy - 0.014))
            bot = _pts(S, zip(s * a, yy + 0.014))
            canvas.line(top, width=max(1.0, 1.0 * k), fill=255)
            canvas.line(bot, width=max(1.0, 0.8 * k), fill=200)
            # Anterior rib: fainter, running down and medially from the lateral wall.
            a2 = np.linspace(an.W, 0.25, 8)
            y2 = y0 + 0.06 + 0.22 * (an.W - a2) ** 1.2
            canvas.line(_pts(S, zip(s * a2, y2)), width=0.028 * S / 2, fill=70)
    return canvas.alpha(0.5 * k)


def _clavicles(an: Anatomy, S: int) -> np.ndarray:
    canvas = Strokes(S, ss=1)
    y_med, y_lat = (0.12, 0.10) if an.ap else (0.16, 0.075)
    for s in (-1, 1):
        pts = bezier((s * 0.07, y_med), (s * 0.25, y_med + 0.03), (s * 0.42, y_lat - 0.02), (s * 0.66, y_lat), 14)
        canvas.line(_pts(S, pts), width=0.055 * S / 2, fill=200)
        canvas.line(_pts(S, [(x, y - 0.012) for x, y in pts]), width=max(1.0, S / 128), fill=255)
    return canvas.alpha(0.6 * S / 128)


def _scapulae(an: Anatomy, S: int) -> np.ndarray:
    canvas = Strokes(S, ss=1)
    lat = 0.0 if an.ap else 0.22  # PA rotates the scapulae out of the lung fields
    for s in (-1, 1):
        pts = [(s * (0.52 + lat), 0.13), (s * (0.58 + lat), 0.32), (s * (0.66 + lat), 0.47),
               (s * (0.96 + lat), 0.22), (s * (0.9 + lat), 0.12)]
        canvas.polygon(_pts(S, pts), fill=90)
        canvas.line(_pts(S, pts[:3]), width=max(1.0, 1.2 * S / 128), fill=160)
    return canvas.alpha(1.0 * S / 128)


def _spine(an: Anatomy, x, y, S: int) -> np.ndarray:
    col = smoothstep((0.075 - np.abs(x - an.tilt)) / 0.02)
    # Vertebral bodies with darker disc spaces, and paired pedicles.
    phase = (y - 0.02) / 0.052
    discs = np.cos(phase * 2 * math.pi) ** 8
    ped = smoothstep((0.018 - np.sqrt(((np.abs(x - an.tilt) - 0.045)) ** 2 + ((phase % 1 - 0.35) * 0.052 * 2) ** 2))
                     / 0.008)
    return col * (0.10 - 0.05 * discs) + 0.07 * ped


def _body(an: Anatomy, x, y, seed: int, S: int) -> tuple[np.ndarray, np.ndarray]:
    """Density without lungs, and the lung air map (before the heart occludes it)."""
    half = 0.22 + 0.8 * smoothstep((y - 0.0) / 0.15)
    body = smoothstep((half - np.abs(x)) / 0.04)
    T = 0.06 + body * (SOFT_TISSUE - 0.06 + 0.08 * np.abs(x) ** 2)
    lungs = np.maximum(_lung(an, x, y, -1), _lung(an, x, y, 1))
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
        depth = rng.uniform(0.1, 0.22)  # drawn for both sides, so each side's size is stable
        if s not in sides:
            continue
        a = s * x
        ac, hw, cp, dome = an.side_geometry(s)
        t = np.clip((a - (ac - hw)) / (2 * hw), 0, 1)
        top = cp - depth * (0.35 + 0.65 * t * t)  # meniscus: fluid climbs the lateral wall
        fluid = smoothstep((y - top) / 0.06)
        lateral = smoothstep((ac + hw + 0.035 - a) / 0.02) * smoothstep((a - (ac - hw - 0.03)) / 0.03)
        below = smoothstep((cp + 0.06 - y) / 0.04)
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
    r = rng.uniform(0.11, 0.16)
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
    canvas.line(_pts(S, bezier(start, (s * 0.3, 0.13), (0.0, 0.15), svc, 14) + bezier(svc, (-0.07, 0.4), (-0.1, 0.46), ra, 10)), lead_w)
    canvas.line(_pts(S, bezier(start, (s * 0.28, 0.15), (-0.02, 0.17), svc, 14) + bezier(svc, (-0.05, 0.45), (0.0, 0.6), rv, 12)), lead_w)
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
    aeration = 1 + 0.08 * smooth_noise(an.rng, S, 6) - 0.12 * np.clip((y - 0.45) / 0.3, 0, 1)
    T -= lung_air * 0.36 * aeration
    T += heart * 0.03
    T += 0.09 * _vessels(an, seed, S) * lung_air
    T += 0.035 * smoothstep(1 - np.sqrt(((np.abs(x) - 0.22) / 0.09) ** 2 + ((y - 0.43) / 0.06) ** 2)) * lung_air
    T += 0.11 * _ribs(an, S) * (0.5 + 0.5 * lung_air)
    T += 0.15 * _clavicles(an, S)
    T += 0.06 * _scapulae(an, S)
    T += _spine(an, x, y, S) * (1 - 0.5 * lung_air)
    masks = {"heart": heart > 0, "cardiomegaly": heart > 0 if f["cardiomegaly"] else empty()}
    masks["effusion"] = empty()
    if f["effusion"]:
        a = _effusion(an, f, seed, x, y)
        over(T, SOFT_TISSUE + 0.02, a)
        masks["effusion"] = a > 0
    masks["opacity"] = empty()
    if f["opacity"]:
        a = _opacity(an, f, seed, x, y, S)
        over(T, SOFT_TISSUE + 0.04, a)
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
    out += stream(seed, "noise").standard_normal(out.shape, dtype=np.float32) * sigma
    grey = np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)
    order = ("heart", "effusion", "cardiomegaly", "opacity", "support_devices", "pacemaker", "marker")
    return np.repeat(grey[..., None], 3, axis=2), {name: masks[name] for name in order}
