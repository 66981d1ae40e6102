"""Write assets/phantom_grid.png: plain samples per modality, then one row per binary attribute
showing it off and on for a few seeds (same seed, only that factor changed).

    OMP_NUM_THREADS=1 /work/venv/bin/python scripts/phantom_grid.py [--size 128] [--out assets/phantom_grid.png]
"""

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.data.attributes import attributes_of  # noqa: E402
from pipelines.data.phantoms import SYNTHETIC_NOTE, phantom  # noqa: E402

SEEDS = (11, 12, 13)
PLAIN = 6
LABEL_W = 190
GAP = 4


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow built without FreeType
        return ImageFont.load_default()


def build(size: int = 128) -> Image.Image:
    rows = []  # (label, sublabel, [(image, caption)])
    for modality in ("dermoscopy", "cxr"):
        rows.append((f"{modality}: samples", "seeds 0-5",
                     [(phantom(modality, s, size).image, f"seed {s}") for s in range(PLAIN)]))
        for attr in attributes_of(modality):
            cells = []
            for seed in SEEDS:
                cells.append((phantom(modality, seed, size, **{attr.name: False}).image, f"{seed} off"))
                cells.append((phantom(modality, seed, size, **{attr.name: True}).image, f"{seed} ON"))
            rows.append((f"{modality}: {attr.name}", f'"{attr.phrase}"', cells))
    cols = max(len(r[2]) for r in rows)
    row_h = size + 16
    head = 30
    width = LABEL_W + cols * (size + GAP)
    canvas = Image.new("RGB", (width, head + len(rows) * (row_h + GAP)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    big, small = _font(15), _font(11)
    draw.text((8, 6), f"MedEdit procedural phantoms ({SYNTHETIC_NOTE}). Each attribute row: same seed off / ON.",
              fill=(0, 0, 0), font=big)
    for r, (label, sub, cells) in enumerate(rows):
        y = head + r * (row_h + GAP)
        draw.text((8, y + size // 2 - 14), label, fill=(0, 0, 0), font=big)
        draw.text((8, y + size // 2 + 6), sub, fill=(90, 90, 90), font=small)
        for c, (img, text) in enumerate(cells):
            x = LABEL_W + c * (size + GAP)
            canvas.paste(Image.fromarray(img), (x, y))
            colour = (200, 0, 0) if "ON" in text else (60, 60, 60)
            draw.text((x + 2, y + size + 2), text, fill=colour, font=small)
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "assets" / "phantom_grid.png"))
    args = parser.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    build(args.size).save(out, optimize=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
