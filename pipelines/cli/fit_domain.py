"""`fit-domain`: fit a model's domain statistics (pipelines/evaluation/domain.py) and write them
into its folder (domain/), where every edit of an uploaded image reads them.

    python -m pipelines fit-domain --model embedded                  # the phantom models: the renderer
    python -m pipelines fit-domain --model out/adapter --data data/mine   # trained on a dataset of your own

The phantom models are fitted on phantoms of training seeds; a model or adapter trained on an
imagefolder dataset on that dataset (--data). --out writes elsewhere (default: the model's folder).
"""

import time
from pathlib import Path

from pipelines.cli import arguments as common
from pipelines.core.errors import MedEditError
from pipelines.editing.requests import integer, number

FIT_DEFAULT, CALIBRATION_DEFAULT = 6000, 2000
COUNT_RANGE = (8, 200_000)


def add_arguments(parser):
    common.add_model_arguments(parser)
    parser.add_argument("--data", default=None, metavar="FOLDER",
                        help="the imagefolder dataset the model was trained on (default: phantoms)")
    parser.add_argument("--n", type=int, default=FIT_DEFAULT,
                        help=f"training images the statistics are fitted on (default {FIT_DEFAULT})")
    parser.add_argument("--calibration", type=int, default=CALIBRATION_DEFAULT,
                        help=f"other training images the limits are set on (default {CALIBRATION_DEFAULT})")
    parser.add_argument("--augment", type=float, default=None,
                        help="share of the fit images shifted as another scanner or viewer shows the "
                             "modality (contrast, a slight turn ...), so these are warned, not refused "
                             "(default 0.5)")
    parser.add_argument("--out", default=None, metavar="FOLDER",
                        help="the folder to write domain/ into (default: the model's own)")


def run(args) -> int:
    common.check_model_source(args)
    n = integer("--n", args.n, *COUNT_RANGE)
    calibration = integer("--calibration", args.calibration, *COUNT_RANGE)
    augment = 0.5 if args.augment is None else number("--augment", args.augment, 0.0, 1.0)
    if args.data is not None and not Path(args.data).is_dir():
        raise MedEditError(f"--data {args.data}: no such folder (an imagefolder dataset with metadata.jsonl)")
    # Imported here: torch loads only once the arguments have passed.
    from pipelines.evaluation.classifier import classifier_folder, load_classifier
    from pipelines.evaluation.domain import classifier_sha256, domain_folder, save_domain
    from pipelines.data.phantom_size import render_size
    from pipelines.evaluation.domain_fit import TUNING_GENERATED, fit_domain, folder_sets, phantom_sets
    from pipelines.evaluation.domain_sets import out_of_domain
    from pipelines.model.offered import model_image_size

    folder = Path(args.out) if args.out else domain_folder(args.model)
    if folder is None:
        raise MedEditError(f"--model {args.model}: no local folder to write the statistics into; give --out")
    common.check_writable_folder(folder / "domain")
    began = time.perf_counter()
    image_size = model_image_size(args.model)  # its uploads are fitted to it before the check
    sets = (folder_sets(args.data, n, calibration, augment=augment) if args.data
            else phantom_sets(n, calibration, render_size(image_size), augment))
    # refuse is chosen against the tuning half of the out-of-domain images; a model of one's own
    # may know CT or MR, so for it pydicom's files are left out of them
    outside = [case.pixels for case in out_of_domain(TUNING_GENERATED, "tuning", medical=not args.data)]
    command = ["python -m pipelines fit-domain", f"--model {args.model or 'embedded'}", f"--n {n}",
               f"--calibration {calibration}", f"--augment {augment:g}"] + ([f"--data {args.data}"] if args.data else [])
    # the classifier that reads the model's images (its own where it ships one), as the check uses
    reader = classifier_folder(domain_folder(args.model))
    info = {"classifier_sha256": classifier_sha256(reader), "fitted_on": args.data or "phantoms (training seeds)",
            "image_size": image_size, "augment": augment, "command": " ".join(command)}
    stats = fit_domain(load_classifier(reader), sets, info, image_size, outside)
    stats.info["seconds"] = round(time.perf_counter() - began, 1)
    written = save_domain(folder, stats)
    summary = {"folder": str(written), "flag": stats.flag, "refuse": stats.refuse, **stats.info}
    common.report(args, summary, f"wrote {written} (flag above {stats.flag:.2f}, refuse above "
                                 f"{stats.refuse:.2f}) in {stats.info['seconds']:.0f} s")
    return 0
