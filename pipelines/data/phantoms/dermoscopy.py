"""Dermoscopy phantoms after ISIC 2019: a melanocytic lesion on skin plus acquisition artifacts.

Layers, composited in this fixed order: skin, lesion (none when the factor `lesion` is off: bare
skin), ink, hair, ruler, gel bubbles, lighting, vignette, sensor noise. Each layer draws from its
own stream, so toggling an artifact changes only the pixels of its mask; toggling melanoma redraws
the lesion (mask "lesion" of either render).
"""

import math

import numpy as np

from pipelines.data.phantoms.drawing import (Strokes, bezier, floor_alpha, grid, over, smooth_noise,
                                        smoothstep, stream, white_noise)

# Skin base colours from Fitzpatrick I to VI (dermoscopy light makes skin pinkish).
SKIN_PALETTE = np.array([[240, 200, 186], [226, 172, 146], [196, 136, 102],
                         [160, 106, 76], [118, 78, 56], [84, 56, 42]], dtype=np.float32)
INK_COLOURS = ((118, 58, 150), (92, 48, 160), (52, 72, 172), (128, 70, 170))


def _palette(tone: float) -> np.ndarray:
    t = tone * (len(SKIN_PALETTE) - 1)
    i = min(int(t), len(SKIN_PALETTE) - 2)
    return SKIN_PALETTE[i] + (t - i) * (SKIN_PALETTE[i + 1] - SKIN_PALETTE[i])


def _skin(f: dict, seed: int, S: int) -> np.ndarray:
    rng = stream(seed, "skin")
    base = _palette(f["skin_tone"])
    low = smooth_noise(rng, S, 3)
    mid = smooth_noise(rng, S, 9)
    red = np.clip(smooth_noise(rng, S, 5), 0, None)
    shade = 1 + 0.05 * low + 0.03 * mid
    img = base[None, None, :] * shade[..., None]
    img += red[..., None] * (np.array([14, -6, -4], np.float32) * (1.2 - f["skin_tone"]))
    return img.astype(np.float32)


def _lesion_shape(f: dict, rng, S: int, box):
    """Normalised radius dn (1 on the border) and alpha of the lesion, inside its box."""
    x, y = (g[box] for g in grid(S))
    cx, cy = f["lesion_x"] * S, f["lesion_y"] * S
    R = f["lesion_size"] * S / 2
    dx, dy = x - cx, y - cy
    theta = np.arctan2(dy, dx)
    d = np.sqrt(dx * dx + dy * dy)
    mel = f["melanoma"]
    r = np.ones_like(theta)
    if mel:
        # Asymmetric, lobulated, notched border.
        amps = [rng.uniform(0.08, 0.16), rng.uniform(0.10, 0.2)] + [rng.uniform(0.03, 0.09) / math.sqrt(k)
                                                                   for k in range(1, 6)]
        for k, amp in enumerate(amps, start=1):
            r += amp * np.cos(k * theta + rng.uniform(0, 2 * math.pi))
        for _ in range(int(rng.integers(1, 4))):
            t0 = rng.uniform(-math.pi, math.pi)
            dt = (theta - t0 + math.pi) % (2 * math.pi) - math.pi
            r -= rng.uniform(0.12, 0.25) * np.exp(-(dt / rng.uniform(0.12, 0.25)) ** 2)
        edge_noise = smooth_noise(rng, S, max(4, int(S / max(R, 1) * 2)), box)
        dn = d / (R * np.maximum(r, 0.35)) + 0.07 * edge_noise
        # Border sharpness varies around the lesion: abrupt in places, fading in others.
        width = 0.06 + 0.12 * (0.5 + 0.5 * np.cos(theta - rng.uniform(0, 2 * math.pi)))
    else:
        phi = rng.uniform(0, 2 * math.pi)
        r += rng.uniform(0.04, 0.14) * np.cos(2 * (theta - phi)) + rng.uniform(0.0, 0.03) * np.cos(
            3 * theta + rng.uniform(0, 6.3))
        dn = d / (R * r)
        width = 0.1
    alpha = floor_alpha(smoothstep((1 - dn) / width))
    return dn, alpha


def _mesh(S: int, box, rng, period: float, warp: float, threshold, softness: float) -> np.ndarray:
    """Pigment network: a warped honeycomb mesh, 1 on the lines and 0 in the holes.

    Three plane waves 60 degrees apart sum to a hexagonal pattern; its low values form the mesh."""
    x, y = (g[box] for g in grid(S))
    freq = 2 * math.pi / (S * period)
    a = rng.uniform(0, math.pi)
    w1, w2 = smooth_noise(rng, S, 10, box) * warp, smooth_noise(rng, S, 10, box) * warp
    xw, yw = x * freq + w1, y * freq + w2
    h = sum(np.cos(xw * math.cos(a + i * 2.0944) + yw * math.sin(a + i * 2.0944)) for i in range(3))
    return smoothstep((threshold - h) / softness)


def _nevus_colour(f: dict, rng, S: int, box, dn: np.ndarray) -> np.ndarray:
    tone = f["skin_tone"]
    dark = 1 - 0.65 * tone  # lesions stay darker than the skin on every tone
    light = np.array([168, 112, 76], np.float32) * dark
    mid = np.array([124, 76, 48], np.float32) * dark
    centre = smoothstep(1 - dn)[..., None]
    col = light + (mid - light) * centre ** 0.7
    # Regular pigment network: a fine, even mesh fading towards the border.
    net = _mesh(S, box, rng, rng.uniform(0.03, 0.038), 1.8, -0.2, 1.2)
    shade = 1 - 0.15 * net * smoothstep((1.05 - dn) / 0.6) + 0.03 * smooth_noise(rng, S, 16, box)
    return col * shade[..., None]


def _melanoma_colour(f: dict, rng, S: int, box, dn: np.ndarray) -> np.ndarray:
    tone = f["skin_tone"]
    dark = 1 - 0.55 * tone
    R = f["lesion_size"] * S / 2
    cells = max(3, int(round(S / R * 1.6)))
    n1 = smooth_noise(rng, S, cells, box)
    n2 = smooth_noise(rng, S, cells, box)
    n3 = smooth_noise(rng, S, cells + 3, box)
    light_brown = np.array([172, 118, 82], np.float32) * dark
    dark_brown = np.array([98, 56, 36], np.float32) * dark
    black = np.array([38, 26, 26], np.float32)
    blue_grey = np.array([96, 104, 128], np.float32) * (1 - 0.3 * tone)
    white_pink = np.array([212, 172, 168], np.float32) * (1 - 0.35 * tone)
    col = np.empty(dn.shape + (3,), np.float32)
    col[:] = light_brown
    # Mostly dark brown with light patches, black blotches, a blue-white veil patch, regression.
    over(col, dark_brown, smoothstep((n1 + 1.1) / 1.0))
    over(col, black, 0.85 * smoothstep((n1 - 0.45) / 0.5))
    over(col, blue_grey, 0.7 * smoothstep((n2 - 1.0) / 0.5) * smoothstep((1.05 - dn) / 0.5))
    over(col, white_pink, 0.45 * smoothstep((n3 - 1.4) / 0.3))
    # Atypical network: broadened, strongly warped mesh of varying thickness, in patches.
    net = _mesh(S, box, rng, rng.uniform(0.035, 0.05), 4.0, 0.2 + 0.6 * n3, 1.0)
    over(col, black, 0.55 * net * smoothstep((0.3 - n2) / 0.6))
    # Peripheral black dots and globules.
    dots = Strokes(S)
    cx, cy = f["lesion_x"] * S, f["lesion_y"] * S
    for _ in range(int(rng.integers(10, 24))):
        t = rng.uniform(0, 2 * math.pi)
        rr = R * rng.uniform(0.5, 1.0)
        rad = S * rng.uniform(0.006, 0.016)
        dots.ellipse(cx + rr * math.cos(t), cy + rr * math.sin(t), rad, rad)
    over(col, black, 0.85 * dots.alpha()[box])
    col *= (1 + 0.05 * smooth_noise(rng, S, 20, box))[..., None]
    return col


def _lesion(img: np.ndarray, f: dict, seed: int, S: int) -> np.ndarray:
    rng = stream(seed, "lesion")
    # Work inside a box that surely holds the lesion (lobes reach about 1.6 radii).
    reach = 0.85 * f["lesion_size"] * S + 2
    cx, cy = f["lesion_x"] * S, f["lesion_y"] * S
    box = (slice(max(0, int(cy - reach)), min(S, int(cy + reach) + 1)),
           slice(max(0, int(cx - reach)), min(S, int(cx + reach) + 1)))
    dn, alpha_box = _lesion_shape(f, rng, S, box)
    colour = (_melanoma_colour if f["melanoma"] else _nevus_colour)(f, rng, S, box, dn)
    over(img[box], colour, alpha_box)
    alpha = np.zeros((S, S), np.float32)
    alpha[box] = alpha_box
    return alpha


def _hair(img: np.ndarray, seed: int, S: int) -> np.ndarray:
    rng = stream(seed, "hair")
    k = S / 128
    canvas = Strokes(S)
    for _ in range(int(rng.integers(7, 15))):
        rr, t = 0.42 * S * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
        mx, my = S / 2 + rr * math.cos(t), S / 2 + rr * math.sin(t)
        ang = rng.uniform(0, math.pi)
        length = S * rng.uniform(0.4, 1.0)
        ux, uy = math.cos(ang), math.sin(ang)
        bend1, bend2 = rng.normal(0, 0.18, 2) * length
        p0 = (mx - ux * length / 2, my - uy * length / 2)
        p3 = (mx + ux * length / 2, my + uy * length / 2)
        p1 = (mx - ux * length / 6 - uy * bend1, my - uy * length / 6 + ux * bend1)
        p2 = (mx + ux * length / 6 - uy * bend2, my + uy * length / 6 + ux * bend2)
        canvas.line(bezier(p0, p1, p2, p3, 20), width=k * rng.uniform(1.2, 2.0),
                    fill=int(255 * rng.uniform(0.88, 1.0)))
    alpha = floor_alpha(canvas.alpha())
    colour = np.array([20, 14, 12], np.float32) * rng.uniform(0.6, 1.3)
    over(img, colour, alpha)
    return alpha


def _ink(img: np.ndarray, f: dict, seed: int, S: int) -> np.ndarray:
    rng = stream(seed, "ink")
    k = S / 128
    colour = np.array(INK_COLOURS[int(rng.integers(len(INK_COLOURS)))], np.float32)
    cx, cy = f["lesion_x"] * S, f["lesion_y"] * S
    R = f["lesion_size"] * S / 2
    canvas = Strokes(S)
    width = k * rng.uniform(3.0, 5.0)
    # A hand-drawn partial circle around the lesion, as surgeons mark excision margins.
    rr = R + S * rng.uniform(0.06, 0.11)
    t0 = rng.uniform(0, 2 * math.pi)
    span = rng.uniform(1.2, 2.0) * math.pi
    ts = np.linspace(t0, t0 + span, 40)
    wob = 1 + 0.06 * np.sin(ts * rng.uniform(1.5, 3) + rng.uniform(0, 6))
    canvas.line(list(zip(cx + rr * wob * np.cos(ts), cy + rr * wob * np.sin(ts))), width=width)
    # Plus a few dots or a short dash.
    for _ in range(int(rng.integers(1, 4))):
        t = rng.uniform(0, 2 * math.pi)
        px, py = cx + (rr + 0.05 * S) * math.cos(t), cy + (rr + 0.05 * S) * math.sin(t)
        if rng.random() < 0.5:
            rad = k * rng.uniform(2.0, 3.5)
            canvas.ellipse(px, py, rad, rad)
        else:
            a = rng.uniform(0, math.pi)
            L = S * rng.uniform(0.05, 0.1)
            canvas.line([(px - L * math.cos(a), py - L * math.sin(a)), (px + L * math.cos(a), py + L * math.sin(a))],
                        width=width * 0.8)
    texture = 0.75 + 0.25 * np.clip(smooth_noise(rng, S, 14), -1, 1)
    alpha = floor_alpha(canvas.alpha(0.5 * k) * texture * rng.uniform(0.7, 0.85))
    over(img, colour, alpha)
    return alpha


def _rotate(pts, quarter: int, S: int):
    """Rotate points by quarter * 90 degrees about the image centre."""
    out = []
    for px, py in pts:
        dx, dy = px - S / 2, py - S / 2
        for _ in range(quarter):
            dx, dy = -dy, dx
        out.append((S / 2 + dx, S / 2 + dy))
    return out


def _ruler(img: np.ndarray, seed: int, S: int) -> np.ndarray:
    rng = stream(seed, "ruler")
    k = S / 128
    quarter = int(rng.integers(4))
    tilt = math.radians(rng.uniform(-5, 5))
    ux, uy = math.cos(tilt), math.sin(tilt)
    nx, ny = -uy, ux
    x0, y0 = S * rng.uniform(0.2, 0.28), S * rng.uniform(0.74, 0.78)
    length, height = S * rng.uniform(0.5, 0.58), S * rng.uniform(0.075, 0.09)
    strip, ticks = Strokes(S), Strokes(S)
    corners = [(x0, y0), (x0 + length * ux, y0 + length * uy),
               (x0 + length * ux + height * nx, y0 + length * uy + height * ny), (x0 + height * nx, y0 + height * ny)]
    strip.polygon(_rotate(corners, quarter, S))
    step = S * rng.uniform(0.028, 0.034)
    for i in range(int(length / step) + 1):
        s = i * step + 0.5 * step
        if s > length - 0.3 * step:
            break
        frac = 0.75 if i % 10 == 0 else 0.5 if i % 5 == 0 else 0.3
        p = (x0 + s * ux, y0 + s * uy)
        q = (p[0] + frac * height * nx, p[1] + frac * height * ny)
        ticks.line(_rotate([p, q], quarter, S), width=max(0.8, 0.9 * k))
    ticks.line(_rotate(corners[:2], quarter, S), width=max(0.8, 0.9 * k))
    strip_alpha = floor_alpha(strip.alpha() * 0.82)
    tick_alpha = floor_alpha(ticks.alpha() * 0.95)
    over(img, np.array([238, 236, 224], np.float32), strip_alpha)
    over(img, np.array([22, 22, 28], np.float32), tick_alpha)
    return np.maximum(strip_alpha, tick_alpha)


def _bubbles(img: np.ndarray, seed: int, S: int) -> np.ndarray:
    rng = stream(seed, "gel_bubbles")
    k = S / 128
    fill, rim_dark, rim_bright, spec = Strokes(S), Strokes(S), Strokes(S), Strokes(S)
    clusters = [(S / 2 + 0.3 * S * math.cos(t) * r, S / 2 + 0.3 * S * math.sin(t) * r)
                for t, r in zip(rng.uniform(0, 2 * math.pi, 2), np.sqrt(rng.random(2)))]
    n = int(rng.integers(4, 11))
    for i in range(n):
        ccx, ccy = clusters[i % 2]
        bx, by = ccx + rng.normal(0, 0.09 * S), ccy + rng.normal(0, 0.09 * S)
        r = S * (rng.uniform(0.05, 0.075) if i < 2 else rng.uniform(0.02, 0.06))
        fill.ellipse(bx, by, r, r)
        rim_dark.ellipse(bx, by, r, r, fill=None, outline=255, width=max(0.8, 0.9 * k))
        rim_bright.ellipse(bx, by, r - 1.0 * k, r - 1.0 * k, fill=None, outline=255, width=max(0.8, 1.1 * k))
        spec.ellipse(bx - 0.4 * r, by - 0.4 * r, 0.2 * r + 0.4 * k, 0.16 * r + 0.4 * k)
    a_fill = floor_alpha(fill.alpha() * 0.22)
    a_dark = floor_alpha(rim_dark.alpha() * 0.5)
    a_bright = floor_alpha(rim_bright.alpha() * 0.8)
    a_spec = floor_alpha(spec.alpha())
    over(img, np.array([250, 248, 245], np.float32), a_fill)
    over(img, np.array([70, 60, 62], np.float32), a_dark)
    over(img, np.array([252, 252, 252], np.float32), a_bright)
    over(img, np.array([255, 255, 255], np.float32), a_spec)
    return np.maximum(np.maximum(a_fill, a_dark), np.maximum(a_bright, a_spec))


def _lighting(f: dict, seed: int, S: int) -> tuple[np.ndarray, np.ndarray]:
    """(shade map, RGB tint): brightness, a gentle gradient and falloff, colour temperature."""
    rng = stream(seed, "lighting")
    x, y = grid(S)
    a = rng.uniform(0, 2 * math.pi)
    dx, dy = (x - S / 2) / S, (y - S / 2) / S
    shade = (0.74 + 0.36 * f["lighting"]) * (1 + 0.12 * (dx * math.cos(a) + dy * math.sin(a))
                                             - 0.25 * (dx * dx + dy * dy))
    warm = rng.uniform(-0.04, 0.05)
    return shade, np.array([1 + warm, 1.0, 1 - warm], np.float32)


def _vignette(seed: int, S: int) -> np.ndarray:
    """Alpha of the dermatoscope's dark circular frame."""
    rng = stream(seed, "vignette")
    x, y = grid(S)
    cx, cy = S / 2 + rng.normal(0, 0.015 * S), S / 2 + rng.normal(0, 0.015 * S)
    R = S * rng.uniform(0.44, 0.5)
    soft = S * rng.uniform(0.015, 0.045)
    d = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
    return floor_alpha(0.97 * smoothstep((d - R) / soft))


VIGNETTE_COLOUR = np.array([8, 6, 6], np.float32)


def render_dermoscopy(f: dict, seed: int, S: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(HxWx3 uint8 image, masks) for complete, checked factors."""
    def empty():
        return np.zeros((S, S), bool)

    img = _skin(f, seed, S)
    lesion = _lesion(img, f, seed, S) > 0 if f["lesion"] else empty()
    masks = {"lesion": lesion, "melanoma": lesion.copy() if f["melanoma"] else empty()}
    masks["ink"] = _ink(img, f, seed, S) > 0 if f["ink"] else empty()
    masks["hair"] = _hair(img, seed, S) > 0 if f["hair"] else empty()
    masks["ruler"] = _ruler(img, seed, S) > 0 if f["ruler"] else empty()
    masks["gel_bubbles"] = _bubbles(img, seed, S) > 0 if f["gel_bubbles"] else empty()
    # Lighting, then the vignette over it, in one pass: img*shade*(1-a) + colour*a.
    shade, tint = _lighting(f, seed, S)
    if f["vignette"]:
        vignette = _vignette(seed, S)
        img *= (shade * (1 - vignette))[..., None] * tint
        img += vignette[..., None] * VIGNETTE_COLOUR
        masks["vignette"] = vignette > 0
    else:
        img *= shade[..., None] * tint
        masks["vignette"] = empty()
    img += white_noise(stream(seed, "sensor"), S, 3, scale=2.0, offset=0.5)  # sensor noise, +0.5 rounds
    out = np.clip(img, 0, 255, out=img).astype(np.uint8)
    order = ("lesion", "melanoma", "hair", "gel_bubbles", "ruler", "ink", "vignette")
    return out, {name: masks[name] for name in order}
