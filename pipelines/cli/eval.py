"""`eval`: attribute accuracy, CFRT, non-target flips and preservation per attribute; FID and KID
per modality with their phantom-vs-phantom floor."""

import json
from pathlib import Path

from pipelines.cli import arguments as common
from pipelines.cli.bench import THREADS_HELP, THREADS_RANGE
from pipelines.core.limits import LOCALITY_RANGE, SCALE_RANGE, STEPS_RANGE, SWAP_RANGE
from pipelines.data.attributes import MODALITIES
from pipelines.editing.requests import integer, number
from pipelines.evaluation.plan import (BATCH, BATCH_RANGE, DEFAULT_RANGE, DEFAULT_SEEDS, MAX_SEEDS, SEED_RANGES,
                                      evaluation_jobs)


def add_arguments(parser):
    common.add_model_arguments(parser)
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS,
                        help=f"seeds per attribute (default {DEFAULT_SEEDS}, at most {MAX_SEEDS})")
    parser.add_argument("--seed-range", choices=tuple(SEED_RANGES), default=DEFAULT_RANGE,
                        help="'reporting' (default): seeds no setting was chosen on, for the figures a "
                             "model card reports; 'tuning': seeds to choose settings on")
    parser.add_argument("--modality", choices=MODALITIES, action="append", help="default: both")
    parser.add_argument("--attribute", action="append", help="default: every attribute")
    parser.add_argument("--swap-at", type=float, default=None, help="default: the model's")
    parser.add_argument("--locality", type=float, default=None, help="local edits; default: the model's")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps; default: the model's")
    parser.add_argument("--anatomy-scale", type=float, default=None, help="default: the model's")
    parser.add_argument("--style-scale", type=float, default=None, help="default: the model's")
    parser.add_argument("--batch", type=int, default=BATCH, help=f"seeds sampled together (default {BATCH})")
    parser.add_argument("--threads", type=int, default=None, help=THREADS_HELP)
    parser.add_argument("--out", default=None, help="also write the JSON report here")


def check_options(args) -> dict:
    """Every value of the command line, checked before torch or the model loads; the evaluator's
    keyword arguments (unset ones stay None: the model's defaults apply)."""
    common.check_model_source(args)
    if args.out:
        common.check_writable_file(args.out)
    modalities = tuple(dict.fromkeys(args.modality or MODALITIES))
    evaluation_jobs(modalities, args.attribute)  # every name is known and evaluated
    optional = lambda check, flag, value, limits: None if value is None else check(flag, value, *limits)  # noqa: E731
    return {"seeds": integer("--seeds", args.seeds, 1, MAX_SEEDS),
            "batch": integer("--batch", args.batch, *BATCH_RANGE),
            "steps": optional(integer, "--steps", args.steps, STEPS_RANGE),
            "swap_at": optional(number, "--swap-at", args.swap_at, SWAP_RANGE),
            "locality": optional(number, "--locality", args.locality, LOCALITY_RANGE),
            "anatomy_scale": optional(number, "--anatomy-scale", args.anatomy_scale, SCALE_RANGE),
            "style_scale": optional(number, "--style-scale", args.style_scale, SCALE_RANGE),
            "seed_range": args.seed_range, "modalities": modalities, "attributes": args.attribute}


def print_table(report: dict) -> None:
    print(f"{'attribute':16} {'acc':>5} {'cfrt':>5} {'keep':>5} {'psnr':>6} {'naive':>6}")
    for r in report["attributes"]:
        print(f"{r['attribute']:16} {r['attribute_accuracy']:5.2f} {r['cfrt'] or 0:5.2f} "
              f"{r['no_non_target_flip']:5.2f} {r['psnr_whole']:6.1f} {r['naive_psnr_whole']:6.1f}")
    print("FID / KID against independent phantoms (floor: phantoms against the same phantoms)")
    for modality, kinds in report["distribution"].items():
        for kind, d in kinds.items():
            if d["fid"] is None:
                print(f"{modality:10} {kind:7} too few images ({d['images']})")
                continue
            print(f"{modality:10} {kind:7} FID {d['fid']:8.2f} (floor {d['fid_floor']:.2f})  "
                  f"KID {d['kid']:.3f} (floor {d['kid_floor']:.3f})  {d['images']} images")


def run(args) -> int:
    options = check_options(args)
    threads = None if args.threads is None else integer("--threads", args.threads, *THREADS_RANGE)
    # Imported here: torch and the model load only once the arguments have passed their checks.
    import torch

    from pipelines.evaluation.evaluator import evaluate
    from pipelines.model.loading import load_model

    if threads is not None:
        torch.set_num_threads(threads)

    report = evaluate(load_model(args.model), **options)
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.json:
        print(text)
    else:
        print_table(report)
    return 0
