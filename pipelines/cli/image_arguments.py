"""`--image FILE [--edit-mask FILE] [--keep-mask FILE] [--refresh R] [--allow-burned-in] [--edit-anyway]`: what
`edit` and `series` share for an image the user brings, checked before the model loads.

The files are read and decoded (PNG, JPEG or DICOM; masks: white or opaque = painted, at the
image's size or the model's) before torch loads, so a bad file is refused in one line. The source
prompts are --anatomy/--style or, when both are empty, what the attribute classifier finds in the
image (said in a note). Outputs record the file's sha256 (settings "source_sha256"), never its
name or any DICOM element; a DICOM whose pixels may show identifying text is refused unless
--allow-burned-in, and then every output says so (pipelines/data/burned_in.py). The model's
domain check (pipelines/evaluation/domain.py) judges the image before the model loads: an image
unlike the training images is edited with a warning (on stderr and in every output), one of no
modality the model knows is refused unless --edit-anyway, and then every output says so.
"""

import sys

from pipelines.cli import arguments as common
from pipelines.core.errors import MedEditError
from pipelines.data.burned_in import BURNED_IN_KEY
from pipelines.editing.requests import Sampling


def add_image_arguments(parser):
    parser.add_argument("--image", default=None, metavar="FILE",
                        help="edit this image (PNG, JPEG or DICOM) instead of a generated one")
    parser.add_argument("--edit-mask", default=None, metavar="FILE",
                        help="with --image: a mask image; the edit changes only where it is painted")
    parser.add_argument("--keep-mask", default=None, metavar="FILE",
                        help="with --image: a mask image; what is painted stays (wins over --edit-mask)")
    parser.add_argument("--refresh", type=float, default=0.0,
                        help="with --image: share of the last steps that draw fresh noise instead of the "
                             "image's own, 0..1 (default 0); raise it when a removal leaves traces, e.g. 0.2")
    parser.add_argument("--allow-burned-in", action="store_true",
                        help="with --image: accept a DICOM whose pixels may show identifying text "
                             "(BurnedInAnnotation YES, a screen save, a scanned document, an ultrasound); "
                             "every output then says so")
    parser.add_argument("--edit-anyway", action="store_true",
                        help="with --image: edit an image the domain check refuses (of no modality the "
                             "model knows); every output then says so")


def check_image_sampling(args) -> None:
    """The sampling arguments; with --image and no prompts, the prompts come from `describe` later,
    so only the numbers are checked now."""
    if args.image is None or args.anatomy or args.style:
        common.check_sampling(args)
        return
    common.check_model_source(args)
    Sampling.with_defaults(common.STAND_IN_DEFAULTS, "image", "", args.seed, args.steps,
                           args.anatomy_scale, args.style_scale)


def check_upload(args):
    """The image and mask files read, decoded and checked: (Decoded, Regions or None), or
    (None, None) without --image."""
    if args.image is None:
        if args.edit_mask or args.keep_mask or args.refresh or args.allow_burned_in or args.edit_anyway:
            raise MedEditError("--edit-mask, --keep-mask, --refresh, --allow-burned-in and --edit-anyway "
                               "need --image")
        return None, None
    # Imported here: a run without --image needs neither PIL decoding nor pydicom.
    from pipelines.data.uploads import read_image, read_mask
    from pipelines.editing.regions import Regions

    decoded = read_image(args.image, allow_burned_in=args.allow_burned_in)
    masks = {flag: read_mask(path, f"{flag} image") if path else None
             for flag, path in (("--edit-mask", args.edit_mask), ("--keep-mask", args.keep_mask))}
    regions = Regions(masks["--edit-mask"], masks["--keep-mask"])
    return decoded, None if regions.empty else regions


def check_domain(args, decoded) -> None:
    """The model's domain check on the upload, before the model loads: a refusal ends the command
    (exit 2, nothing written) unless --edit-anyway; a warning goes to stderr (and, from the
    pipeline, into every output)."""
    if decoded is None:
        return
    # Imported here: the classifier loads torch, which only a run that got past its checks needs.
    from pipelines.evaluation.domain import gate, load_domain_check

    verdict = gate(load_domain_check(args.model), decoded.pixels, args.edit_anyway)
    if verdict.warning:
        print(f"warning: {verdict.warning}", file=sys.stderr)


def record_source(settings: dict, decoded) -> None:
    """What of the file a result's settings (and so every output) record: its sha256, and that its
    pixels may show identifying text when it was accepted so."""
    settings["source_sha256"] = decoded.sha256
    if decoded.burned_in:
        settings[BURNED_IN_KEY] = "YES"


def upload_notes(args, decoded) -> list[str]:
    """What reading the file did (resized, first frame...), and, without typed prompts, the source
    prompts the classifier found (filled into args)."""
    if decoded is None:
        return []
    notes = list(decoded.notes)
    if not (args.anatomy or args.style):
        notes.append(describe_into(args, decoded))
    return notes


def describe_into(args, decoded) -> str:
    """Fill the source prompts from what the classifier finds; the note says what it found."""
    # Imported here: the classifier loads torch, which only a run that got past its checks needs.
    from pipelines.evaluation.describe import describe
    from pipelines.evaluation.domain import load_domain_check

    description = describe(decoded.pixels, check=load_domain_check(args.model))
    args.anatomy, args.style = description.anatomy, description.style
    return (f"source prompts from the classifier ({description.summary()}): "
            f"anatomy '{description.anatomy}', style '{description.style}'")
