"""Drawing primitives shared by the phantom worlds: seeded streams, grids, noise, strokes, blending.

Every factor draws from its own random stream derived from (seed, factor name), so switching one
factor never shifts another factor's random numbers; layers are composited pixel by pixel in a fixed
order, so a layer whose alpha is zero leaves a pixel exactly as it was.
"""

import hashlib
import zlib
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SUPERSAMPLE = 2  # strokes are drawn at twice the size and box-filtered down: cheap antialiasing
ALPHA_FLOOR = 1.0 / 255  # alpha below this is cut to zero, so "the pixels a layer drew" is exact


def stream(seed: int, name: str) -> np.random.Generator:
    """The random stream of one factor (or one drawing step) for one seed."""
    return np.random.Generator(np.random.PCG64([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode())]))


def unit_hash(seed: int, name: str) -> float:
    """A uniform number in [0, 1) from (seed, name): cheaper than a stream for a single draw."""
    digest = hashlib.blake2b(f"{int(seed)}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0 ** 64


@lru_cache(maxsize=16)
def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x, y) in pixels, float32, read-only and shared."""
    c = np.arange(size, dtype=np.float32) + 0.5
    x, y = np.meshgrid(c, c)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


@lru_cache(maxsize=16)
def unit_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates in image units: x in [-1, 1] left to right, y in [0, 1] top to bottom."""
    x, y = grid(size)
    ux = x * (2.0 / size) - 1.0
    uy = y * (1.0 / size)
    ux.flags.writeable = False
    uy.flags.writeable = False
    return ux, uy


def smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def floor_alpha(alpha: np.ndarray) -> np.ndarray:
    """Cut faint alpha to exactly zero, so a layer's mask (alpha > 0) bounds every pixel it changed."""
    return np.where(alpha < ALPHA_FLOOR, np.float32(0), alpha).astype(np.float32, copy=False)


def smooth_noise(rng: np.random.Generator, size: int, cells: int, box=None) -> np.ndarray:
    """Band-limited noise in about [-1, 1]: a random lattice upsampled bicubically to size x size.

    The lattice has a margin of cells so bicubic edge effects stay outside the image. With box
    (row slice, column slice) only that part of the field is computed (same values, less work)."""
    lattice = rng.standard_normal((cells + 3, cells + 3)).astype(np.float32)
    r0, r1, c0, c1 = (0, size, 0, size) if box is None else (box[0].start, box[0].stop, box[1].start, box[1].stop)
    scale = cells / size
    src = (1.5 + c0 * scale, 1.5 + r0 * scale, 1.5 + c1 * scale, 1.5 + r1 * scale)
    img = Image.fromarray(lattice, mode="F").resize((c1 - c0, r1 - r0), Image.BICUBIC, box=src)
    return np.asarray(img, dtype=np.float32)


@lru_cache(maxsize=8)
def _noise_table(size: int, channels: int, scale: float, offset: float) -> np.ndarray:
    table = np.random.default_rng(0).standard_normal((2 * size, 2 * size, channels)).astype(np.float32)
    table = table * np.float32(scale) + np.float32(offset)
    table.flags.writeable = False
    return table


def white_noise(rng: np.random.Generator, size: int, channels: int = 1, scale: float = 1.0,
                offset: float = 0.0) -> np.ndarray:
    """Per-pixel Gaussian noise (times scale, plus offset): a seeded random window of a cached
    table, so it costs almost nothing and stays deterministic by seed."""
    table = _noise_table(size, channels, scale, offset)
    r, c = rng.integers(0, size, 2)
    flip = rng.integers(0, 4)
    win = table[r:r + size, c:c + size]
    win = win[::-1] if flip & 1 else win
    win = win[:, ::-1] if flip & 2 else win
    return win if channels > 1 else win[..., 0]


def blur(alpha: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of a [0, 1] float map through PIL's 8-bit path (fast, C)."""
    if radius <= 0:
        return alpha
    img = Image.fromarray((np.clip(alpha, 0, 1) * 255 + 0.5).astype(np.uint8), mode="L")
    return np.asarray(img.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32) * (1 / 255)


class Strokes:
    """An antialiased greyscale canvas in final-image pixel coordinates, read back as float alpha."""

    def __init__(self, size: int, ss: int = SUPERSAMPLE):
        self.size, self.ss = size, ss
        self.img = Image.new("L", (size * ss, size * ss), 0)
        self.draw = ImageDraw.Draw(self.img)

    def _p(self, pts):
        s = self.ss
        return [(float(x) * s, float(y) * s) for x, y in pts]

    def line(self, pts, width: float, fill: int = 255):
        self.draw.line(self._p(pts), fill=fill, width=max(1, int(round(width * self.ss))), joint="curve")

    def line_flat(self, flat: list[float], width: float, fill: int = 255):
        """A polyline from a flat list of already supersampled coordinates (fast path)."""
        self.draw.line(flat, fill=fill, width=max(1, int(round(width * self.ss))), joint="curve")

    def ellipse(self, cx, cy, rx, ry, fill: int | None = 255, outline: int | None = None, width: float = 1):
        s = self.ss
        box = [(cx - rx) * s, (cy - ry) * s, (cx + rx) * s, (cy + ry) * s]
        self.draw.ellipse(box, fill=fill, outline=outline, width=max(1, int(round(width * s))))

    def polygon(self, pts, fill: int = 255):
        self.draw.polygon(self._p(pts), fill=fill)

    def rounded_rectangle(self, x0, y0, x1, y1, radius, fill: int = 255):
        s = self.ss
        self.draw.rounded_rectangle([x0 * s, y0 * s, x1 * s, y1 * s], radius=radius * s, fill=fill)

    def alpha(self, blur_radius: float = 0.0) -> np.ndarray:
        img = self.img.reduce(self.ss) if self.ss > 1 else self.img
        if blur_radius > 0:
            img = img.filter(ImageFilter.GaussianBlur(blur_radius))
        return np.asarray(img, dtype=np.float32) * (1 / 255)


def bezier(p0, p1, p2, p3, n: int = 16) -> list[tuple[float, float]]:
    """Points along a cubic Bezier curve."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    p0, p1, p2, p3 = (np.asarray(p, dtype=np.float64) for p in (p0, p1, p2, p3))
    pts = ((1 - t) ** 3) * p0 + 3 * ((1 - t) ** 2) * t * p1 + 3 * (1 - t) * (t ** 2) * p2 + (t ** 3) * p3
    return [tuple(p) for p in pts]


def _bbox(alpha: np.ndarray) -> tuple[slice, slice] | None:
    rows = np.flatnonzero(alpha.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(alpha.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def over(img: np.ndarray, color, alpha: np.ndarray) -> None:
    """In place: img = img * (1 - alpha) + color * alpha (color: scalar, RGB triple or image).

    Only the bounding box of alpha > 0 is touched: sparse layers cost little."""
    box = _bbox(alpha)
    if box is None:
        return
    color = np.asarray(color, dtype=np.float32)
    if color.ndim >= 2:
        color = color[box]
    sub, a = img[box], alpha[box]
    if img.ndim == 3:
        a = a[..., None]
    sub += a * (color - sub)
