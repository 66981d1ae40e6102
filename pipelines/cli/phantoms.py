"""`python -m pipelines phantoms`: write N procedural phantoms as a Hugging Face imagefolder.

Layout: DIR/000000.png ... and DIR/metadata.jsonl with one line per image (file_name, anatomy,
style, labels, factors, seed). Seeds are S, S+1, ... Everything is written into a hidden temporary
folder next to DIR, named for this process, and renamed at the end: a failure or SIGTERM removes
it, and a run killed outright (SIGKILL) leaves one that the next run for DIR removes.
"""

import json
import sys
from pathlib import Path

from PIL import Image, PngImagePlugin
from tqdm import tqdm

from pipelines.cli.arguments import check_writable_folder
from pipelines.core.files import atomic_folder
from pipelines.core.errors import MedEditError
from pipelines.core.limits import MAX_DATASET_IMAGES, SEED_MAX
from pipelines.data.attributes import MODALITIES, check_modality
from pipelines.data.phantoms import SIZE_RANGE, SYNTHETIC_NOTE, phantom
from pipelines.data.phantoms.factors import check_size
from pipelines.editing.requests import integer


def add_arguments(parser) -> None:
    parser.add_argument("--modality", required=True, help=f"one of: {', '.join(MODALITIES)}")
    parser.add_argument("--n", type=int, required=True, help="number of images (> 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first image; the rest follow")
    parser.add_argument("--out", required=True, help="output folder (must not exist, or be empty)")
    parser.add_argument("--size", type=int, default=128,
                        help=f"image side in pixels, {SIZE_RANGE[0]} to {SIZE_RANGE[1]} (default 128)")


def check_request(modality: str, n: int, seed: int, out: Path, size: int) -> None:
    """Every argument, before anything is rendered or written."""
    check_modality(modality)
    check_size(size)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_DATASET_IMAGES:
        raise MedEditError(f"invalid --n {n!r}; choose a positive number of images, "
                           f"at most {MAX_DATASET_IMAGES}")
    integer("--seed", seed, 0, SEED_MAX - (n - 1))  # every image's seed S + i is a valid seed
    check_writable_folder(out, empty=True)


def write_phantoms(modality: str, n: int, seed: int, out: Path, size: int = 128, progress: bool = True) -> Path:
    """Render n phantoms into out (imagefolder layout); returns out."""
    out = Path(out)
    check_request(modality, n, seed, out, size)
    try:
        with atomic_folder(out) as tmp:
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
    except OSError as error:
        raise MedEditError(f"cannot write {out} ({error.strerror}); choose a writable output folder") from None
    return out


def run(args) -> int:
    out = write_phantoms(args.modality, args.n, args.seed, Path(args.out), args.size)
    print(f"wrote {args.n} {args.modality} phantoms to {out}", file=sys.stderr)
    return 0
