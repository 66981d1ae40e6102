"""Images as files a person can keep: PNG, a comparison figure, animations.

Every file says what produced it (Provenance) and what it is, synthetic (SYNTHETIC_MARK) or, for an
image the user brought, edited by a model (EDITED_MARK): PNGs in tEXt chunks, the GIF in its
comment, the WebP in EXIF. PNGs (iTXt XML:com.adobe.xmp) and the WebP
(XMP chunk) also carry an XMP packet with IPTC's digital source type (export/xmp.py), the mark other
software reads. Images stay lossless: PNG, lossless WebP;
only the GIF (256 colours) may lose colour detail, which is why the WebP exists beside it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from pipelines.core.errors import MedEditError
from pipelines.core.files import write_atomic
from pipelines.core.limits import SOFTWARE, SYNTHETIC_MARK
from pipelines.export.provenance import Provenance, mark_of, provenance_record, to_json
from pipelines.export import xmp

PNG_KEY = "mededit"  # tEXt keyword holding the provenance JSON
DEFAULT_DURATION_MS = 120
EXIF_IMAGE_DESCRIPTION, EXIF_SOFTWARE = 0x010E, 0x0131


def _check_image(image, what: str = "image") -> Image.Image:
    if not isinstance(image, Image.Image):
        raise MedEditError(f"{what} must be a PIL image, got {type(image).__name__}")
    if image.width < 1 or image.height < 1:
        raise MedEditError(f"{what} is empty ({image.width}x{image.height})")
    return image


def as_8bit(image: Image.Image) -> Image.Image:
    """L or RGB, the two modes every exporter handles; 16-bit/float images are refused, not truncated."""
    _check_image(image)
    if image.mode in ("L", "RGB"):
        return image
    if image.mode in ("1", "LA"):
        return image.convert("L")
    if image.mode in ("P", "PA", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        return image.convert("RGB")
    raise MedEditError(f"image mode {image.mode!r} is not supported; use 8-bit L (grey) or RGB")


def check_frames(frames, what: str = "frames") -> list[Image.Image]:
    """A non-empty list of same-size images, all L or all RGB (grey frames become RGB if mixed)."""
    if frames is None or len(frames) == 0:
        raise MedEditError(f"no {what} to export; give at least one image")
    frames = [as_8bit(_check_image(f, f"{what}[{i}]")) for i, f in enumerate(frames)]
    sizes = {f.size for f in frames}
    if len(sizes) > 1:
        raise MedEditError(f"{what} differ in size ({', '.join(f'{w}x{h}' for w, h in sorted(sizes))}); "
                           "all must be the same size")
    if len({f.mode for f in frames}) > 1:
        frames = [f.convert("RGB") for f in frames]
    return frames


def png_bytes(image: Image.Image, provenance: Provenance | None, extra: dict | None = None) -> bytes:
    """Lossless PNG carrying provenance (tEXt 'mededit', JSON), its mark and XMP."""
    image = as_8bit(image)
    record = provenance_record(provenance, extra)
    info = PngImagePlugin.PngInfo()
    info.add_text(PNG_KEY, to_json(record))
    info.add_itxt(xmp.PNG_KEY, xmp.xmp_packet(record))  # uncompressed, as XMP readers expect
    info.add_text("Comment", mark_of(record))
    info.add_text("Disclaimer", mark_of(record))
    info.add_text("Software", SOFTWARE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=6)
    return buffer.getvalue()


def read_png_provenance(data: bytes) -> dict:
    """The provenance record a MedEdit PNG carries (as written by png_bytes)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG":
                raise MedEditError(f"not a PNG (found {image.format})")
            text = dict(image.text)
    except (OSError, SyntaxError) as error:
        raise MedEditError(f"cannot read PNG: {error}") from None
    if PNG_KEY not in text:
        raise MedEditError("this PNG carries no MedEdit provenance")
    return json.loads(text[PNG_KEY])


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without scalable default font
        return ImageFont.load_default()


# Anchors of a perceptually ordered dark-to-bright map (after matplotlib's "inferno").
_COLOURMAP = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99],
                       [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164]], dtype=np.float32)


def difference_map(before: Image.Image, after: Image.Image, floor: int = 32) -> Image.Image:
    """Colour-mapped |after - before| (max over channels): bright where the edit changed the image.

    Normalised by the largest change, but never by less than `floor` grey levels, so that a
    near-identical pair stays dark instead of amplifying noise into a bright map.
    """
    _check_image(before, "before")
    _check_image(after, "after")
    if before.size != after.size:
        raise MedEditError(f"before {before.size} and after {after.size} differ in size")
    a = np.asarray(before.convert("RGB"), dtype=np.int16)
    b = np.asarray(after.convert("RGB"), dtype=np.int16)
    diff = np.abs(b - a).max(axis=2).astype(np.float32)
    scaled = diff / max(float(diff.max()), float(floor)) * (len(_COLOURMAP) - 1)
    low = np.clip(np.floor(scaled).astype(np.int32), 0, len(_COLOURMAP) - 2)
    frac = (scaled - low)[..., None]
    rgb = _COLOURMAP[low] * (1 - frac) + _COLOURMAP[low + 1] * frac
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")


READABLE_PANEL = 256  # px: a comparison's panels are at least this large, labels and pixels readable


def side_by_side(before: Image.Image, after: Image.Image, labels=("neutral", "edited"),
                 diff: bool = True, mark: str = SYNTHETIC_MARK) -> Image.Image:
    """One labelled figure: before | after [| difference], with what the images are underneath
    (synthetic; an edited upload says so instead)."""
    before, after = check_frames([before, after], "side-by-side images")
    panels = [before.convert("RGB"), after.convert("RGB")]
    names = list(labels)[:2] + [""] * max(0, 2 - len(labels))
    if diff:
        panels.append(difference_map(before, after))
        names.append("difference")
    w, h = before.size
    gap = max(4, w // 64)
    text = max(12, min(32, h // 16))
    header, footer = text + 2 * gap, text + 2 * gap
    canvas = Image.new("RGB", (len(panels) * w + (len(panels) + 1) * gap, h + header + footer), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font(text)
    for i, (panel, name) in enumerate(zip(panels, names)):
        x = gap + i * (w + gap)
        canvas.paste(panel, (x, header))
        draw.text((x + w / 2, header / 2), str(name), fill="black", font=font, anchor="mm")
    line, size = f"MedEdit: {mark}", max(10, text * 3 // 4)
    small = _font(size)
    while size > 6 and draw.textlength(line, font=small) > canvas.width - 2 * gap:
        size -= 1  # the mark must be readable whole, also under small images
        small = _font(size)
    draw.text((canvas.width / 2, header + h + footer / 2), line, fill=(90, 90, 90), font=small, anchor="mm")
    return canvas


def enlarged(image: Image.Image, size: int = READABLE_PANEL) -> Image.Image:
    """Enlarged by the smallest whole factor that makes its longer side at least `size`, nearest
    neighbour: each true pixel becomes a crisp square, nothing is invented between them."""
    factor = max(1, -(-size // max(image.size)))
    return image if factor == 1 else image.resize((image.width * factor, image.height * factor), Image.NEAREST)


def comparison(before: Image.Image, after: Image.Image, provenance: Provenance | None,
               diff: bool = True) -> Image.Image:
    """side_by_side labelled and marked for what the images are: neutral | edited and synthetic
    for a generated image; source | edited and edited by a model for an image the user brought.
    Small images are enlarged first (`enlarged`), so the figure can be read: 64-px images give
    256-px panels, a figure 784 px wide."""
    before, after = (enlarged(image) for image in check_frames([before, after], "side-by-side images"))
    if provenance is not None and provenance.source == "upload":
        return side_by_side(before, after, ("source", "edited"), diff, provenance.mark)
    return side_by_side(before, after, diff=diff)


# ---------------------------------------------------------------- animations

def _sequence(frames, ping_pong: bool) -> list[Image.Image]:
    frames = check_frames(frames)
    return frames + frames[-2:0:-1] if ping_pong and len(frames) > 2 else frames


def _durations(duration_ms, count: int):
    if isinstance(duration_ms, (list, tuple)):
        if len(duration_ms) != count:
            raise MedEditError(f"{len(duration_ms)} durations for {count} frames")
        values = [int(d) for d in duration_ms]
    else:
        values = [int(duration_ms)] * count
    if min(values) < 1:
        raise MedEditError("frame durations must be at least 1 ms")
    return values if len(set(values)) > 1 else values[0]


def _mark_text(provenance: Provenance | None, extra: dict | None = None) -> str:
    record = provenance_record(provenance, extra)
    return f"{SOFTWARE}: {mark_of(record)}. " + to_json(record)


def animation_gif(frames, duration_ms=DEFAULT_DURATION_MS, ping_pong: bool = False,
                  provenance: Provenance | None = None) -> bytes:
    """Looping GIF (256 colours per frame). Pillow merges consecutive identical frames."""
    frames = _sequence(frames, ping_pong)
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                   duration=_durations(duration_ms, len(frames)), disposal=1,
                   comment=_mark_text(provenance).encode("ascii"))
    return buffer.getvalue()


def animation_webp_lossless(frames, duration_ms=DEFAULT_DURATION_MS, ping_pong: bool = False,
                            provenance: Provenance | None = None) -> bytes:
    """Looping lossless WebP animation: every frame decodes to exactly the input RGB pixels."""
    frames = [f.convert("RGB") for f in _sequence(frames, ping_pong)]
    exif = Image.Exif()
    exif[EXIF_IMAGE_DESCRIPTION] = _mark_text(provenance)
    exif[EXIF_SOFTWARE] = SOFTWARE
    packet = xmp.xmp_packet(provenance_record(provenance)).encode("utf-8")
    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:], loop=0,
                   duration=_durations(duration_ms, len(frames)), lossless=True, quality=100,
                   method=4, exact=True, allow_mixed=False, minimize_size=False,
                   exif=exif.tobytes().removeprefix(b"Exif\x00\x00"),  # WebP's EXIF chunk is bare TIFF
                   xmp=packet)
    return buffer.getvalue()


def save_png(image: np.ndarray, path, provenance: Provenance | None = None, extra: dict | None = None) -> Path:
    """An image array [H, W, 3] uint8 as a PNG with its provenance, written atomically."""
    return write_atomic(path, png_bytes(Image.fromarray(image), provenance, extra))
