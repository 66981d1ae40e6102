"""Upload edits against the renderer's exact counterfactual, and their speed, as JSON.

    python scripts/eval_uploads.py --seeds 200 --out eval_uploads.json          # the report
    python scripts/eval_uploads.py --seeds 25 --seed-range tuning --attributes hair,effusion
    python scripts/eval_uploads.py --bench                                       # speed only

Until `eval --uploads` and `bench` call pipelines.evaluation.uploads themselves, this runs it.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.core.files import write_atomic  # noqa: E402
from pipelines.evaluation.plan import BATCH, DEFAULT_RANGE, SEED_RANGES  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--seeds", type=int, default=200, help="uploads per attribute and direction")
    parser.add_argument("--seed-range", default=DEFAULT_RANGE, choices=sorted(SEED_RANGES))
    parser.add_argument("--attributes", default=None, help="comma-separated (default: all)")
    parser.add_argument("--directions", default="add,remove")
    parser.add_argument("--swap-at", type=float, default=None)
    parser.add_argument("--locality", type=float, default=None)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--edit", default="prompts", choices=("prompts", "slider"),
                        help="the counterfactual's captions as edited prompts, or the attribute's slider at +-1")
    parser.add_argument("--bench", action="store_true", help="measure speed only")
    parser.add_argument("--out", default=None, help="write the JSON here too")
    args = parser.parse_args()

    import torch

    from pipelines.evaluation.uploads import bench_uploads, evaluate_uploads
    from pipelines.model.loading import load_model

    model = load_model(args.model)
    if args.bench:
        report = bench_uploads(model)
    else:
        attributes = args.attributes.split(",") if args.attributes else None
        report = evaluate_uploads(model, args.seeds, attributes=attributes, directions=tuple(args.directions.split(",")),
                                  seed_range=args.seed_range, swap_at=args.swap_at, locality=args.locality,
                                  batch=args.batch, edit=args.edit)
    report["threads"] = torch.get_num_threads()
    text = json.dumps(report, indent=2) + "\n"
    if args.out:
        write_atomic(args.out, text.encode())
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
