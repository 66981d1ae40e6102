"""`synthesize`: an imagefolder dataset of generated images from a spec (augmentation).

On several GPUs or processes: `accelerate launch -m pipelines synthesize ...` splits the indices.
"""

from pipelines.cli import arguments as common
from pipelines.export.synthesis_spec import check_counts, read_spec


def add_arguments(parser):
    common.add_model_arguments(parser)
    parser.add_argument("--spec", required=True,
                        help='JSON: [{"anatomy": T, "style": T, "weight": W, "labels": {NAME: 0|1}, '
                             '"sliders": {NAME: SCALE}}, ...] or {"prompts": [...], "steps": N, '
                             '"anatomy_scale": F, "style_scale": F}')
    parser.add_argument("--n", "--count", dest="n", type=int, required=True,
                        help="number of images (--count under torchrun, which takes --n for itself)")
    parser.add_argument("--out", required=True, help="output folder (rerun to resume)")
    parser.add_argument("--seed", type=int, default=0, help="image i uses seed SEED + i")


def run(args) -> int:
    spec = read_spec(args.spec)  # checked whole before any model is loaded
    check_counts(args.n, args.seed)
    common.check_model_source(args)
    common.check_writable_folder(args.out)
    # Imported here: torch, accelerate and the model load only once the arguments have passed.
    from pipelines.export.synthesis import synthesize

    summary = synthesize(spec, args.n, args.out, args.model, args.seed)
    if summary["total"] is not None:  # the main process reports
        common.report(args, summary, f"{summary['total']} images in {args.out} "
                                     f"({summary['written']} new by this process)")
    return 0
