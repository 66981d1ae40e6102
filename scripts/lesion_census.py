"""How many of a model's generated dermoscopy images show no lesion: the neutral images `eval` draws
for every dermoscopy row (the same seeds, prompts, steps, scales and noise: Evaluator.run_batch with
no edit), read by a classifier's `lesion` output. The cheap half of `eval`'s "dermoscopy images with
a lesion" (which adds the edited images): no edit is sampled, so it runs in minutes on one core.
First, the classifier is checked at the model's image size (a 128-px classifier reading a 64-px
model's images sees them enlarged): its lesion accuracy on held-out phantoms of that size, half of
them bare skin, is in the report.

    python scripts/lesion_census.py --seeds 200 --classifier assets/classifier --json \
        --sheet out/no_lesion.png       # a contact sheet of the images without a lesion
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.data.attributes import attributes_of  # noqa: E402
from pipelines.evaluation.classifier import DEFAULT_FOLDER, load_classifier, lesion_probability  # noqa: E402
from pipelines.evaluation.evaluator import Evaluator, prompts_for  # noqa: E402
from pipelines.evaluation.lesion_check import PRESENT, TARGET  # noqa: E402
from pipelines.evaluation.plan import BATCH, DEFAULT_RANGE, SEED_RANGES, row_seeds  # noqa: E402
from pipelines.model.loading import load_model  # noqa: E402
from pipelines.training.data import build_phantom_set  # noqa: E402

SHEET_COLUMNS = 8
CHECK_SEED = 10_500_000  # held out from training (below 10,000,000) and past the trainer's own held-out set


def accuracy_at(classifier, size: int, n: int) -> dict:
    """The lesion output's accuracy on n held-out dermoscopy phantoms drawn at `size` (rendered at
    twice it, box-filtered), half without a lesion: on those with one and on those without."""
    data = build_phantom_set(n, CHECK_SEED, size, modalities=("dermoscopy",), progress=False,
                             render_size=2 * size, lesion_free=0.5)
    found = lesion_probability(classifier, list(data.images.permute(0, 2, 3, 1).numpy())) >= PRESENT
    shown = data.lesion.numpy() > 0
    return {"phantoms": n, "size": size, "first_seed": CHECK_SEED,
            "with_lesion_found": float(found[shown].mean()), "bare_found_bare": float((~found[~shown]).mean())}


def census(model, classifier, seeds: int, seed_range: str, batch: int) -> tuple[dict, list]:
    """Per dermoscopy row: images, with a lesion, and the seeds without one; and those images."""
    evaluator = Evaluator(model, batch=batch)
    rows, bare = {}, []
    for attribute in (a.name for a in attributes_of("dermoscopy")):
        seen, missing = 0, []
        for chunk in np.array_split(row_seeds(seed_range, attribute, seeds), -(-seeds // batch)):
            chunk = [int(s) for s in chunk]
            prompts = [prompts_for("dermoscopy", attribute, s)[1] for s in chunk]
            images, _ = evaluator.run_batch(chunk, prompts, prompts, swaps=[])
            p = lesion_probability(classifier, list(images))
            seen += len(chunk)
            for seed, image, probability in zip(chunk, images, p):
                if probability < PRESENT:
                    missing.append({"seed": seed, "lesion_probability": round(float(probability), 3)})
                    bare.append(image)
        rows[attribute] = {"images": seen, "with_lesion": 1 - len(missing) / seen, "without_lesion": missing}
    return rows, bare


def contact_sheet(images: list, path: Path, scale: int = 2) -> None:
    rows = -(-len(images) // SHEET_COLUMNS)
    size = images[0].shape[0]
    sheet = np.full((rows * size, min(len(images), SHEET_COLUMNS) * size, 3), 255, np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, SHEET_COLUMNS)
        sheet[r * size:(r + 1) * size, c * size:(c + 1) * size] = image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).resize((sheet.shape[1] * scale, sheet.shape[0] * scale), Image.Resampling.NEAREST).save(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model source (default: the embedded model)")
    parser.add_argument("--classifier", default=str(DEFAULT_FOLDER), help="a classifier folder with a lesion output")
    parser.add_argument("--seeds", type=int, default=200, help="seeds per dermoscopy row")
    parser.add_argument("--seed-range", default=DEFAULT_RANGE, choices=sorted(SEED_RANGES))
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sheet", help="write the images without a lesion here (PNG)")
    parser.add_argument("--check", type=int, default=400, help="held-out phantoms for the classifier's check")
    args = parser.parse_args()
    classifier = load_classifier(args.classifier)
    if not classifier.config.has_lesion:
        raise SystemExit(f"the classifier in {args.classifier} has no lesion output")
    model = load_model(args.model)
    began = time.perf_counter()
    check = accuracy_at(classifier, model.image_size, args.check)
    rows, bare = census(model, classifier, args.seeds, args.seed_range, args.batch)
    images = sum(r["images"] for r in rows.values())
    without = sum(len(r["without_lesion"]) for r in rows.values())
    report = {"model_id": model.model_id, "classifier": args.classifier, "seed_range": args.seed_range,
              "seeds_per_row": args.seeds, "threads": torch.get_num_threads(),
              "seconds": round(time.perf_counter() - began, 1), "images": images, "without_lesion": without,
              "with_lesion": 1 - without / images, "target": TARGET, "classifier_check": check, "rows": rows}
    if args.sheet and bare:
        contact_sheet(bare, Path(args.sheet))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"classifier check at {check['size']} px: lesions found {check['with_lesion_found']:.3f}, "
              f"bare skin read as bare {check['bare_found_bare']:.3f} ({check['phantoms']} held-out phantoms)")
        for name, row in rows.items():
            print(f"{name:12} {row['with_lesion']:.3f} with a lesion; without: "
                  f"{', '.join(str(m['seed']) for m in row['without_lesion']) or 'none'}")
        print(f"all: {images - without} of {images} with a lesion ({1 - without / images:.3f}; target {TARGET})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
