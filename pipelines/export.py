"""Export edited images as files a person can keep: PNGs, a comparison figure, animations, a ZIP.

Every file says what produced it (Provenance) and that it is synthetic (SYNTHETIC_MARK): PNGs in
tEXt chunks, the GIF in its comment, the WebP in EXIF, DICOM in its header (pipelines/dicom.py),
the ZIP in README.txt and manifest.json. Images stay lossless: PNG, lossless WebP; only the GIF
(256 colours) may lose colour detail, which is why the WebP exists beside it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from pipelines.attributes import check_modality
from pipelines.errors import MedEditError

SYNTHETIC_MARK = "synthetic image, not a patient"
SOFTWARE = "MedEdit"
PNG_KEY = "mededit"  # tEXt keyword holding the provenance JSON
DEFAULT_DURATION_MS = 120
EXIF_IMAGE_DESCRIPTION, EXIF_SOFTWARE = 0x010E, 0x0131


@dataclass
class Provenance:
    """What produced an image; embedded in every exported file."""
    model_id: str
    model_revision: str
    modality: str  # "dermoscopy" | "cxr"
    anatomy: str
    style: str
    to_anatomy: str
    to_style: str
    seed: int
    swap_at: float  # fraction of the denoising steps after which the target prompts take over
    steps: int
    extra: dict = field(default_factory=dict)  # sliders, guidance, frame index/t...

    def validate(self) -> "Provenance":
        check_modality(self.modality)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise MedEditError(f"seed must be an integer, got {self.seed!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, (int, np.integer)) or self.steps < 1:
            raise MedEditError(f"steps must be a positive integer, got {self.steps!r}")
        try:
            swap = float(self.swap_at)
        except (TypeError, ValueError):
            raise MedEditError(f"swap_at must be a number in [0, 1], got {self.swap_at!r}") from None
        if not 0.0 <= swap <= 1.0:
            raise MedEditError(f"swap_at must be in [0, 1], got {self.swap_at!r}")
        if not isinstance(self.extra, dict):
            raise MedEditError(f"provenance extra must be a dict, got {type(self.extra).__name__}")
        to_json(self.extra)  # fails early on values JSON cannot hold
        return self

    def as_dict(self) -> dict:
        return json.loads(to_json(asdict(self)))  # plain JSON types (numpy scalars become Python)

    @classmethod
    def from_dict(cls, data: dict) -> "Provenance":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _plain(value):
    """json.dumps hook: numpy scalars/arrays and paths become plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(data, indent: int | None = None) -> str:
    """ASCII JSON (tEXt chunks are Latin-1 and DICOM text is ASCII by default)."""
    try:
        return json.dumps(data, default=_plain, ensure_ascii=True, indent=indent, sort_keys=indent is not None)
    except (TypeError, ValueError) as error:
        raise MedEditError(f"provenance cannot be written as JSON: {error}") from None


def provenance_record(provenance: Provenance | None, extra: dict | None = None) -> dict:
    """The dict embedded in one file: provenance, with per-file extras merged into 'extra'."""
    record = provenance.validate().as_dict() if provenance is not None else {"extra": {}}
    if extra:
        record["extra"] = {**record["extra"], **json.loads(to_json(extra))}
    record["synthetic"] = SYNTHETIC_MARK
    record["software"] = SOFTWARE
    return record


# ---------------------------------------------------------------- images

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
    """Lossless PNG carrying provenance (tEXt 'mededit', JSON) and the synthetic mark."""
    image = as_8bit(image)
    info = PngImagePlugin.PngInfo()
    info.add_text(PNG_KEY, to_json(provenance_record(provenance, extra)))
    info.add_text("Comment", SYNTHETIC_MARK)
    info.add_text("Disclaimer", SYNTHETIC_MARK)
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


def side_by_side(before: Image.Image, after: Image.Image, labels=("neutral", "edited"),
                 diff: bool = True) -> Image.Image:
    """One labelled figure: before | after [| difference], with the synthetic mark underneath."""
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
    small = _font(max(10, text * 3 // 4))
    draw.text((canvas.width / 2, header + h + footer / 2), f"MedEdit: {SYNTHETIC_MARK}",
              fill=(90, 90, 90), font=small, anchor="mm")
    return canvas


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
    return f"{SOFTWARE}: {SYNTHETIC_MARK}. " + to_json(provenance_record(provenance, extra))


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
    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:], loop=0,
                   duration=_durations(duration_ms, len(frames)), lossless=True, quality=100,
                   method=4, exact=True, allow_mixed=False, minimize_size=False, exif=exif.tobytes())
    return buffer.getvalue()


# ---------------------------------------------------------------- ZIP

README = """MedEdit export
==============

Every image in this archive is a SYNTHETIC IMAGE, NOT A PATIENT ({mark}).
It was generated by a diffusion model from text prompts; it shows no real person, is not a
diagnosis and must not be used for clinical decisions.

Model:     {model_id} (revision {model_revision})
Modality:  {modality}
Prompts:   anatomy "{anatomy}" -> "{to_anatomy}"; style "{style}" -> "{to_style}"
Seed:      {seed}; swap point {swap_at}; {steps} steps

Contents
  frames/frame_NNN.png  lossless frames; each PNG carries its provenance (tEXt "mededit", JSON)
  side_by_side.png      before | after | difference map
  series.gif            looping animation (256 colours)
  series.webp           looping lossless WebP animation (exact pixels)
{dicom_line}  manifest.json         every other file with its sha256 and size, and the provenance
"""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def export_zip(frames: list[Image.Image], provenance: Provenance, frame_extras: list[dict] | None,
               out_path, before: Image.Image | None = None, after: Image.Image | None = None,
               dicom: bool = True, duration_ms=DEFAULT_DURATION_MS) -> Path:
    """Write the whole export as one ZIP at out_path (atomically) and return its path."""
    if not isinstance(provenance, Provenance):
        raise MedEditError("export_zip needs a Provenance")
    provenance.validate()
    frames = check_frames(frames)
    if frame_extras is None:
        frame_extras = [{"frame": i, "t": i / max(1, len(frames) - 1)} for i in range(len(frames))]
    if len(frame_extras) != len(frames):
        raise MedEditError(f"{len(frame_extras)} frame extras for {len(frames)} frames")
    if (before is None) != (after is None):
        raise MedEditError("give both before and after, or neither")
    if before is None:
        before, after = frames[0], frames[-1]

    files: dict[str, bytes] = {}
    for i, (frame, extra) in enumerate(zip(frames, frame_extras)):
        files[f"frames/frame_{i:03d}.png"] = png_bytes(frame, provenance, {"frame": i, **(extra or {})})
    files["side_by_side.png"] = png_bytes(side_by_side(before, after), provenance, {"panel": "side_by_side"})
    files["series.gif"] = animation_gif(frames, duration_ms, provenance=provenance)
    files["series.webp"] = animation_webp_lossless(frames, duration_ms, provenance=provenance)
    if dicom:
        from pipelines.dicom import dicom_series_bytes  # dicom imports this module
        for name, data in dicom_series_bytes(frames, provenance, frame_extras):
            files[f"dicom/{name}"] = data
    p = provenance.as_dict()
    files["README.txt"] = README.format(
        mark=SYNTHETIC_MARK, dicom_line="  dicom/                DICOM Secondary Capture series (synthetic)\n"
        if dicom else "", **p).encode("utf-8")
    manifest = {
        "software": SOFTWARE,
        "synthetic": SYNTHETIC_MARK,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "provenance": p,
        "frames": [{"path": f"frames/frame_{i:03d}.png", "extra": e or {}} for i, e in enumerate(frame_extras)],
        "files": [{"path": name, "sha256": _sha256(data), "size": len(data)} for name, data in files.items()],
    }
    files["manifest.json"] = to_json(manifest, indent=2).encode("ascii")

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    try:
        with os.fdopen(handle, "wb") as raw, zipfile.ZipFile(raw, "w") as archive:
            for name, data in files.items():
                # PNG/GIF/WebP are compressed already; deflating them again only costs time.
                packed = name.endswith((".png", ".gif", ".webp"))
                archive.writestr(name, data, compress_type=zipfile.ZIP_STORED if packed else zipfile.ZIP_DEFLATED)
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path
