"""The shipped domain check on fresh phantoms drawn at 128 px (as training, the fit and
eval --domain draw them) and at the 64-px model's own size (thin strokes aliased), which
eval --domain's in-domain set does not hold: how many of each are flagged and refused.

    python scripts/domain_render_size.py [--n 100] [--model embedded]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.data.attributes import MODALITIES  # noqa: E402
from pipelines.data.phantoms import phantom  # noqa: E402
from pipelines.data.uploads import fit_pixels  # noqa: E402
from pipelines.evaluation.domain import load_domain_check  # noqa: E402

FIRST_SEED = 40_005_000  # fresh: past training (< 10M) and the evaluators' ranges


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="phantoms of each modality")
    parser.add_argument("--model", default="embedded")
    args = parser.parse_args()
    check = load_domain_check(args.model)
    stats, size = check.stats, check.classifier.config.input_size
    rows = {}
    for modality in MODALITIES:
        for drawn in (128, 64):
            images = [fit_pixels(phantom(modality, FIRST_SEED + i, size=drawn).image, size)[0] for i in range(args.n)]
            scores, _ = check.scores(images)
            rows[f"{modality}@{drawn}px"] = {"images": args.n, "flagged": float((scores > stats.flag).mean()),
                                             "refused": float((scores > stats.refuse).mean()),
                                             "score_median": float(np.median(scores)), "score_max": float(scores.max())}
    print(json.dumps({"flag": stats.flag, "refuse": stats.refuse, "first_seed": FIRST_SEED, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
