"""`eval`: attribute accuracy, CFRT, non-target flips and preservation per attribute; FID and KID
per modality with their phantom-vs-phantom floor.

`eval --uploads`: edits of uploaded images (unseen phantoms through the upload path, inverted and
edited) against the renderer's exact counterfactual, per attribute and direction, beside the naive
way (evaluation/uploads.py). The same checks run first; --directions and --edit are its own.

`eval --domain`: the model's domain check on images built at run time (evaluation/domain_eval.py):
3 x --seeds fresh phantoms as uploads arrive, --seeds near-domain hard cases, --seeds phantoms of a
known modality shifted far (to be warned, not refused), every out-of-domain
file that ships with the installed packages and --seeds / 20 generated images of each kind.

`eval --landing`: whether "did the edit land" says what the evaluator would, on --seeds reporting
seeds per attribute, direction and kind of edit (evaluation/landing_agreement.py; e.g. --seeds 4).
"""

import sys

from pipelines.cli import arguments as common
from pipelines.cli.bench import THREADS_HELP, THREADS_RANGE
from pipelines.core.errors import MedEditError
from pipelines.core.limits import LOCALITY_RANGE, REFRESH_RANGE, SCALE_RANGE, STEPS_RANGE, SWAP_RANGE
from pipelines.data.attributes import MODALITIES
from pipelines.editing.requests import integer, number
from pipelines.evaluation.plan import (BATCH, BATCH_RANGE, DEFAULT_RANGE, DEFAULT_SEEDS, MAX_SEEDS, SEED_RANGES,
                                      evaluation_jobs)
from pipelines.evaluation.upload_plan import DIRECTIONS, EDITS, SEED_BLOCKS, checked_directions


def add_arguments(parser):
    common.add_model_arguments(parser)
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS,
                        help=f"seeds per attribute (default {DEFAULT_SEEDS}, at most {MAX_SEEDS}); with "
                             f"--uploads, per attribute and direction (at most {MAX_SEEDS // SEED_BLOCKS})")
    parser.add_argument("--seed-range", choices=tuple(SEED_RANGES), default=DEFAULT_RANGE,
                        help="'reporting' (default): seeds no setting was chosen on, for the figures a "
                             "model card reports; 'tuning': seeds to choose settings on")
    parser.add_argument("--modality", choices=MODALITIES, action="append", help="default: both")
    parser.add_argument("--attribute", "--attributes", action="append",
                        help="repeatable or comma-separated, e.g. hair,effusion (default: every attribute)")
    parser.add_argument("--swap-at", type=float, default=None, help="default: the model's")
    parser.add_argument("--locality", type=float, default=None, help="local edits; default: the model's")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps; default: the model's")
    parser.add_argument("--anatomy-scale", type=float, default=None, help="default: the model's")
    parser.add_argument("--style-scale", type=float, default=None, help="default: the model's")
    parser.add_argument("--batch", type=int, default=BATCH, help=f"seeds sampled together (default {BATCH})")
    parser.add_argument("--threads", type=int, default=None, help=THREADS_HELP)
    parser.add_argument("--out", default=None, help="also write the JSON report here")
    parser.add_argument("--uploads", action="store_true",
                        help="evaluate edits of uploaded images against the true counterfactual instead")
    parser.add_argument("--directions", default=None,
                        help=f"--uploads: comma-separated, of {','.join(DIRECTIONS)} (default: both)")
    parser.add_argument("--edit", choices=EDITS, default=None,
                        help="--uploads: the counterfactual's captions as the edited prompts (default), "
                             "or the attribute's slider at +-1")
    parser.add_argument("--domain", action="store_true",
                        help="evaluate the model's domain check (in-domain uploads against images of other "
                             "modalities, photographs, documents, noise) instead")
    parser.add_argument("--landing", action="store_true",
                        help="measure how often the landing note agrees with the evaluator's judgement instead")
    parser.add_argument("--kinds", default=None,
                        help="--landing: comma-separated, of typed,slider,upload (default: all three)")
    parser.add_argument("--refresh", type=float, default=None,
                        help="--uploads: share of the last steps that draw fresh noise instead of the "
                             "upload's own (default 0)")


def check_options(args) -> dict:
    """Every value of the command line, checked before torch or the model loads; the evaluator's
    keyword arguments (unset ones stay None: the model's defaults apply)."""
    common.check_model_source(args)
    if args.out:
        common.check_writable_file(args.out)
    modalities = tuple(dict.fromkeys(args.modality or MODALITIES))
    attributes = names_in(args.attribute)
    evaluation_jobs(modalities, attributes)  # every name is known and evaluated
    # A row of the upload evaluation draws SEED_BLOCKS blocks of --seeds from the attribute's seeds.
    max_seeds = MAX_SEEDS // SEED_BLOCKS if args.uploads else MAX_SEEDS
    optional = lambda check, flag, value, limits: None if value is None else check(flag, value, *limits)  # noqa: E731
    options = {"seeds": integer("--seeds", args.seeds, 1, max_seeds),
               "batch": integer("--batch", args.batch, *BATCH_RANGE),
               "steps": optional(integer, "--steps", args.steps, STEPS_RANGE),
               "swap_at": optional(number, "--swap-at", args.swap_at, SWAP_RANGE),
               "locality": optional(number, "--locality", args.locality, LOCALITY_RANGE),
               "anatomy_scale": optional(number, "--anatomy-scale", args.anatomy_scale, SCALE_RANGE),
               "style_scale": optional(number, "--style-scale", args.style_scale, SCALE_RANGE),
               "seed_range": args.seed_range, "modalities": modalities, "attributes": attributes}
    if args.uploads:
        return {**options, "directions": check_directions(args.directions), "edit": args.edit or EDITS[0],
                "refresh": 0.0 if args.refresh is None else number("--refresh", args.refresh, *REFRESH_RANGE)}
    for flag, value in (("--directions", args.directions), ("--edit", args.edit), ("--refresh", args.refresh)):
        if value is not None:
            raise MedEditError(f"{flag} applies to eval --uploads only")
    if args.landing:
        return {"seeds": options["seeds"], "seed_range": options["seed_range"], "modalities": modalities,
                "attributes": attributes, "kinds": checked_kinds(args.kinds)}
    if args.kinds is not None:
        raise MedEditError("--kinds applies to eval --landing only")
    return options


def checked_kinds(value: str | None) -> tuple[str, ...]:
    from pipelines.evaluation.landing_agreement import KINDS  # numpy only; torch loads later

    if value is None:
        return KINDS
    kinds = tuple(dict.fromkeys(k.strip() for k in value.split(",")))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise MedEditError(f"--kinds: unknown kind {unknown[0] if unknown else value!r}; choose from "
                           f"{', '.join(KINDS)}")
    return kinds


def names_in(values: list[str] | None) -> list[str] | None:
    """--attribute hair --attribute ink and --attributes hair,ink alike; None when none given."""
    if not values:
        return None
    names = [name.strip() for value in values for name in value.split(",")]
    if not all(names):
        raise MedEditError(f"--attribute: an empty name in {','.join(values)!r}")
    return list(dict.fromkeys(names))


def check_directions(value: str | None) -> tuple[str, ...]:
    if value is None:
        return DIRECTIONS
    return checked_directions(dict.fromkeys(d.strip() for d in value.split(",")), "--directions")


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
    lesion = report.get("lesion") or {}
    if lesion.get("with_lesion") is not None:
        print(f"dermoscopy images with a lesion {lesion['with_lesion']:.3f} (target {lesion['target']}): "
              f"{lesion['without_lesion']} of {lesion['generated_images']} without one")
    elif lesion:
        print(f"dermoscopy images with a lesion: {lesion['note']}")


def print_upload_table(report: dict) -> None:
    print(f"{'attribute':16} {'dir':6} {'lands':>5} {'naive':>5} {'keep':>5} "
          f"{'psnr out':>8} {'naive':>6} {'vs truth':>8} {'naive':>6}")
    shown = lambda value: "-" if value is None else f"{value:.1f}"  # noqa: E731  (nothing outside the change)
    for r in report["rows"]:
        print(f"{r['attribute']:16} {r['direction']:6} {r['edit_lands']:5.2f} {r['naive_edit_lands']:5.2f} "
              f"{r['no_non_target_flip']:5.2f} {shown(r['psnr_outside_vs_source']):>8} "
              f"{shown(r['naive_psnr_outside_vs_source']):>6} {shown(r['psnr_vs_truth']):>8} "
              f"{shown(r['naive_psnr_vs_truth']):>6}")
    summary = report["summary"]
    refreshed = f", last {report['refresh']:g} of the steps' noise fresh" if report["refresh"] else ""
    print(f"{report['seeds_per_row']} uploads per row, edit by {report['edit']}{refreshed}; PSNR in dB outside the "
          f"counterfactual's change (vs the upload) and against the true counterfactual; inversion: "
          f"reconstruction within {summary['reconstruction_max_diff']} of 255, latent error "
          f"{summary['latent_error_max']:.1e}")


def print_domain_table(report: dict) -> None:
    print(f"AUROC in vs out {report['auroc_in_vs_out']:.4f} (in vs near {report['auroc_in_vs_near']:.3f}); "
          f"flag above {report['flag']:.2f}, refuse above {report['refuse']:.2f}")
    print(f"out refused {report['out_refused']:.3f}, in flagged {report['in_flagged']:.3f}, near flagged "
          f"{report['near_flagged']:.3f} (refused {report['near_refused']:.3f}); images {report['images']}")
    shifted = report["near_shifted"]
    if shifted["images"]:
        print(f"near, as another source shows it ({', '.join(shifted['variants'])}): flagged {shifted['flagged']:.3f}, "
              f"refused {shifted['refused']:.3f} of {shifted['images']}")
    known = report["known_modality"]
    print(f"near-domain, known modality (shifted far: {', '.join(known['variants'])}): in domain "
          f"{known['in_domain']:.3f}, warned {known['warned']:.3f}, refused {known['refused']:.3f} "
          f"of {known['images']}")
    print(f"{'kind':28} {'group':5} {'n':>4} {'flagged':>7} {'refused':>7} {'min':>7} {'median':>7}")
    for kind, k in report["kinds"].items():
        print(f"{kind:28} {k['group']:5} {k['images']:4} {k['flagged']:7.2f} {k['refused']:7.2f} "
              f"{k['score_min']:7.2f} {k['score_median']:7.2f}")


def print_landing_table(report: dict) -> None:
    print(f"the landing note agrees with the evaluator on {report['agreement']:.3f} of {report['edits']} edits "
          f"(target {report['target']}): the asked change {report['target_agreement']:.3f}, unasked changes "
          f"{report['changes_agreement']:.3f}; {report['seeds_per_row']} {report['seed_range']} seeds per row")
    for key in ("by_kind", "by_direction", "by_attribute"):
        print(f"{key[3:]:10} " + "  ".join(f"{k} {v:.3f}" for k, v in report[key].items()))
    for r in report["disagreements"]:
        print(f"disagrees: {r['kind']} {r['attribute']} {r['direction']} seed {r['seed']}: note {r['note']}, "
              f"evaluator {r['evaluator']}")


def run_landing(args, options: dict) -> int:
    threads = None if args.threads is None else integer("--threads", args.threads, *THREADS_RANGE)
    import torch  # here: only once the arguments have passed

    from pipelines.evaluation.landing_agreement import measure

    if threads is not None:
        torch.set_num_threads(threads)
    pipeline = common.load_pipeline(args)
    said = lambda name, seconds: print(f"{name}: {seconds:.0f} s", file=sys.stderr, flush=True)  # noqa: E731
    report = {**measure(pipeline, **options, progress=said), "model": args.model or "embedded", "threads": torch.get_num_threads()}
    common.write_report(args, report, print_landing_table)
    return 0


def run_domain(args) -> int:
    if args.landing:
        raise MedEditError("--domain and --landing are two evaluations: choose one")
    if args.uploads:
        raise MedEditError("--domain and --uploads are two evaluations: choose one")
    common.check_model_source(args)
    if args.out:
        common.check_writable_file(args.out)
    seeds = integer("--seeds", args.seeds, 1, MAX_SEEDS)
    threads = None if args.threads is None else integer("--threads", args.threads, *THREADS_RANGE)
    import torch  # here: only once the arguments have passed

    from pipelines.evaluation.domain import load_domain_check
    from pipelines.evaluation.domain_eval import evaluate_domain

    if threads is not None:
        torch.set_num_threads(threads)
    report = evaluate_domain(load_domain_check(args.model), n_in=3 * seeds, n_near=seeds,
                             n_generated=max(1, seeds // 20))
    common.write_report(args, report, print_domain_table)
    return 0


def run(args) -> int:
    if args.domain:
        return run_domain(args)
    if args.landing and args.uploads:
        raise MedEditError("--landing and --uploads are two evaluations: choose one (--kinds upload edits uploads)")
    options = check_options(args)
    if args.landing:
        return run_landing(args, options)
    threads = None if args.threads is None else integer("--threads", args.threads, *THREADS_RANGE)
    # Imported here: torch and the model load only once the arguments have passed their checks.
    import torch

    from pipelines.model.loading import load_model

    if threads is not None:
        torch.set_num_threads(threads)

    if args.uploads:
        from pipelines.evaluation.uploads import evaluate_uploads  # here for the reason above

        report = {**evaluate_uploads(load_model(args.model), **options), "threads": torch.get_num_threads()}
    else:
        from pipelines.evaluation.evaluator import evaluate  # here for the reason above

        report = evaluate(load_model(args.model), **options)
    common.write_report(args, report, print_upload_table if args.uploads else print_table)
    return 0
