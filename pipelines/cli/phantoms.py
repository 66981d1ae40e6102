"""`python -m pipelines phantoms`: write N procedural phantoms as a Hugging Face imagefolder.

Layout: DIR/000000.png ... and DIR/metadata.jsonl with one line per image (file_name, anatomy,
style, labels, factors, seed). Seeds are S, S+1, ... Everything is written into a temporary folder
next to DIR and renamed at the end, so a failure leaves nothing half-written behind.
"""

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image, PngImagePlugin
from tqdm import tqdm

from pipelines.data.attributes import MODALITIES
from pipelines.core.errors import MedEditError
from pipelines.data.phantoms import SIZE_RANGE, SYNTHETIC_NOTE, phantom
from pipelines.data.attributes import check_modality
from pipelines.data.phantoms.factors import check_size


def add_arguments(parser) -> None:
    parser.add_argument("--modality", required=True, help=f"one of: {', '.join(MODALITIES)}")
    parser.add_argument("--n", type=int, required=True, help="number of images (> 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first image; the rest follow")
    parser.add_argument("--out", required=True, help="output folder (must not exist, or be empty)")
    parser.add_argument("--size", type=int, default=128,
                        help=f"image side in pixels, {SIZE_RANGE[0]} to {SIZE_RANGE[1]} (default 128)")


def _check_out(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            raise MedEditError(f"output {out} exists and is not a folder; choose a new folder name")
        if any(out.iterdir()):
            raise MedEditError(f"output folder {out} is not empty; choose a new or empty folder")
    parent = out.parent
    if not parent.is_dir():
        raise MedEditError(f"parent folder {parent} of the output does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise MedEditError(f"cannot write in {parent}; choose a writable output folder")


def write_phantoms(modality: str, n: int, seed: int, out: Path, size: int = 128, progress: bool = True) -> Path:
    """Render n phantoms into out (imagefolder layout); returns out."""
    check_modality(modality)
    check_size(size)
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise MedEditError(f"invalid --n {n!r}; choose a positive number of images")
    out = Path(out)
    _check_out(out)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as error:
        raise MedEditError(f"cannot write in {out.parent} ({error.strerror}); "
                           "choose a writable output folder") from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary folder
        info = PngImagePlugin.PngInfo()
        info.add_text("Description", SYNTHETIC_NOTE)
        width = max(6, len(str(n - 1)))
        with open(tmp / "metadata.jsonl", "w", encoding="utf-8") as meta:
            for i in tqdm(range(n), desc=f"phantoms {modality}", unit="img", file=sys.stderr,
                          disable=not progress):
                p = phantom(modality, seed + i, size)
                name = f"{i:0{width}d}.png"
                Image.fromarray(p.image).save(tmp / name, pnginfo=info, compress_level=1)
                meta.write(json.dumps({"file_name": name, "anatomy": p.anatomy, "style": p.style,
                                       "labels": p.labels, "factors": p.factors, "seed": p.seed,
                                       "modality": modality, "note": SYNTHETIC_NOTE}) + "\n")
        if out.exists():
            out.rmdir()  # empty (checked above); the rename below takes its place
        os.replace(tmp, out)
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        raise MedEditError(f"cannot write {out} ({error.strerror}); choose a writable output folder") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def run(args) -> int:
    out = write_phantoms(args.modality, args.n, args.seed, Path(args.out), args.size)
    print(f"wrote {args.n} {args.modality} phantoms to {out}", file=sys.stderr)
    return 0
