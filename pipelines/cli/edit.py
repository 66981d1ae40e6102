"""`edit`: neutral.png, edited.png, side_by_side.png and metadata.json from one noise, or from an
image the user brings (`--image FILE`: PNG, JPEG or DICOM), inverted and edited.

With --image, neutral.png is the image at the model's size, edited.png keeps its pixels outside
the region the edit acted in, --seed draws the inversion's noise, and the source prompts are
--anatomy/--style or, when both are empty, what the attribute classifier finds in the image (said
in a note). --edit-mask and
--keep-mask are mask images (white or opaque = painted) of the image's size or the model's.
Everything given is checked, the files read and decoded, before the model loads. Outputs record
the file's sha256, never its name or any DICOM element.
"""

import json

import numpy as np
from PIL import Image

from pipelines.cli import arguments as common
from pipelines.core.errors import MedEditError
from pipelines.core.limits import SYNTHETIC_MARK
from pipelines.editing.requests import Sampling
from pipelines.core.files import atomic_folder
from pipelines.export.images import save_png, side_by_side
from pipelines.export.provenance import provenance_from_settings

EDITED_UPLOAD = "an image edited by a generative model"


def add_arguments(parser):
    common.add_model_arguments(parser)
    common.add_sampling_arguments(parser)
    common.add_edit_arguments(parser)
    parser.add_argument("--image", default=None, metavar="FILE",
                        help="edit this image (PNG, JPEG or DICOM) instead of a generated one")
    parser.add_argument("--edit-mask", default=None, metavar="FILE",
                        help="with --image: a mask image; the edit changes only where it is painted")
    parser.add_argument("--keep-mask", default=None, metavar="FILE",
                        help="with --image: a mask image; what is painted stays (wins over --edit-mask)")
    parser.add_argument("--out", required=True, help="output folder")


def check_upload(args):
    """The image and mask files read, decoded and checked: (Decoded, Regions) or (None, None)."""
    if args.image is None:
        if args.edit_mask or args.keep_mask:
            raise MedEditError("--edit-mask and --keep-mask need --image")
        return None, None
    # Imported here: a run without --image needs neither PIL decoding nor pydicom.
    from pipelines.data.uploads import read_image, read_mask
    from pipelines.editing.regions import Regions

    decoded = read_image(args.image)
    masks = {flag: read_mask(path, f"{flag} image") if path else None
             for flag, path in (("--edit-mask", args.edit_mask), ("--keep-mask", args.keep_mask))}
    regions = Regions(masks["--edit-mask"], masks["--keep-mask"])
    return decoded, None if regions.empty else regions


def run(args) -> int:
    # 1. Every number, prompt and path, and the uploaded files, before the model loads.
    common.check_edit(args)
    if args.image is None or args.anatomy or args.style:
        common.check_sampling(args)
    else:  # the prompts will come from `describe`; the numbers are checked now
        common.check_model_source(args)
        Sampling.with_defaults(common.STAND_IN_DEFAULTS, "image", "", args.seed, args.steps,
                               args.anatomy_scale, args.style_scale)
    common.check_writable_folder(args.out)
    decoded, regions = check_upload(args)
    # 2. The model, the request, the edit.
    pipeline = common.load_pipeline(args)
    notes = []
    if decoded is not None:
        notes += decoded.notes
        if not (args.anatomy or args.style):
            notes.append(describe_into(args, decoded))
    sampling, edit = common.sampling_from(args, pipeline), common.edit_from(args, pipeline)
    with atomic_folder(args.out) as tmp:
        if decoded is None:
            result = pipeline.edit(sampling, edit)
        else:
            result = pipeline.edit_image(decoded.pixels, sampling, edit, regions)
            result.settings["source_sha256"] = decoded.sha256
        meta = write_outputs(tmp, result, decoded is not None, notes)
    out = args.out
    for note in meta["notes"]:
        print(f"note: {note}")
    common.report(args, meta, f"wrote neutral.png, edited.png, side_by_side.png, metadata.json "
                              f"to {out} in {result.seconds:.2f} s")
    return 0


def describe_into(args, decoded) -> str:
    """Fill the source prompts from what the classifier finds; the note says what it found."""
    from pipelines.evaluation.describe import describe

    description = describe(decoded.pixels)
    args.anatomy, args.style = description.anatomy, description.style
    return (f"source prompts from the classifier ({description.summary()}): "
            f"anatomy '{description.anatomy}', style '{description.style}'")


def write_outputs(tmp, result, uploaded: bool, notes: list[str]) -> dict:
    prov = provenance_from_settings(result.settings)
    if uploaded:
        prov.extra.update(upload_provenance(result.settings))
    save_png(result.neutral, tmp / "neutral.png", prov, {"image": "upload" if uploaded else "neutral"})
    save_png(result.edited, tmp / "edited.png", prov, {"image": "edited"})
    pair = side_by_side(Image.fromarray(result.neutral), Image.fromarray(result.edited),
                        *((("source", "edited"), True, EDITED_UPLOAD) if uploaded else ()))
    save_png(np.asarray(pair), tmp / "side_by_side.png", prov)
    meta = {**result.settings, "notes": notes + result.notes, "seconds": round(result.seconds, 3),
            **({"digital_source": EDITED_UPLOAD} if uploaded else {"synthetic": SYNTHETIC_MARK})}
    (tmp / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def upload_provenance(settings: dict) -> dict:
    """What an edited upload's files add to the pipeline's provenance (which records the pixels'
    sha256, the inversion, the terms and the masks): the file's sha256, nothing else of it."""
    return {"digital_source": EDITED_UPLOAD, "source_sha256": settings["source_sha256"]}
