"""`eval`: attribute accuracy, CFRT, non-target flips and preservation per attribute; FID and KID
per modality with their phantom-vs-phantom floor."""

import json
from pathlib import Path

from pipelines.data.attributes import MODALITIES
from pipelines.cli import arguments as common
from pipelines.core.errors import MedEditError


def add_arguments(parser):
    common.add_model_arguments(parser)
    parser.add_argument("--seeds", type=int, default=200, help="seeds per attribute")
    parser.add_argument("--modality", choices=MODALITIES, action="append", help="default: both")
    parser.add_argument("--attribute", action="append", help="default: every attribute")
    parser.add_argument("--swap-at", type=float, default=None)
    parser.add_argument("--locality", type=float, default=None, help="local edits; default: the model's")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--anatomy-scale", type=float, default=None, help="default: the model's")
    parser.add_argument("--style-scale", type=float, default=None, help="default: the model's")
    parser.add_argument("--batch", type=int, default=25, help="seeds sampled together")
    parser.add_argument("--out", default=None, help="also write the JSON report here")


def run(args) -> int:
    from pipelines.evaluation.evaluator import evaluate
    from pipelines.model.loading import load_model
    from pipelines.core.limits import SCALE_RANGE
    from pipelines.editing.requests import Edit, integer, number

    seeds = integer("seeds", args.seeds, 1, 100_000)
    batch = integer("batch", args.batch, 1, 1024)
    Edit(swap_at=args.swap_at or 0.0, locality=args.locality or 0.0)  # validates the ranges
    for name in ("anatomy_scale", "style_scale"):
        if getattr(args, name) is not None:
            number(name.replace("_", " "), getattr(args, name), *SCALE_RANGE)
    report = evaluate(load_model(args.model), seeds=seeds, swap_at=args.swap_at,
                      modalities=tuple(args.modality or MODALITIES), attributes=args.attribute,
                      steps=args.steps, batch=batch, anatomy_scale=args.anatomy_scale,
                      style_scale=args.style_scale, locality=args.locality)
    if not report["attributes"]:
        raise MedEditError("no attribute matched --attribute/--modality")
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.json:
        print(text)
    else:
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
    return 0
