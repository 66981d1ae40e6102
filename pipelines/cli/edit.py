"""`edit`: neutral.png, edited.png, side_by_side.png and metadata.json from one noise, or from an
image the user brings (`--image FILE`: PNG, JPEG or DICOM), inverted and edited.

With --image, neutral.png is the image at the model's size, edited.png keeps its pixels outside
the region the edit acted in, --seed draws the inversion's noise, and the source prompts are
--anatomy/--style or, when both are empty, what the attribute classifier finds in the image (said
in a note); --edit-mask and --keep-mask as image_arguments.py says. Everything given is checked,
the files read and decoded, before the model loads. Every output says what it is: synthetic, or
an upload edited by a generative model (export/provenance.py MARKS), and records the file's
sha256, never its name or any DICOM element.
"""

import json

import numpy as np
from PIL import Image

from pipelines.cli import arguments as common
from pipelines.cli.image_arguments import (add_image_arguments, check_domain, check_image_sampling, check_upload,
                                           record_source, upload_notes)
from pipelines.core.files import atomic_folder
from pipelines.export.images import comparison, save_png
from pipelines.export.provenance import MARKS, provenance_from_settings


def add_arguments(parser):
    common.add_model_arguments(parser)
    common.add_sampling_arguments(parser)
    common.add_edit_arguments(parser)
    add_image_arguments(parser)
    parser.add_argument("--out", required=True, help="output folder")


def run(args) -> int:
    # 1. Every number, prompt and path, and the uploaded files, before the model loads.
    common.check_edit(args)
    check_image_sampling(args)
    common.check_writable_folder(args.out)
    decoded, regions = check_upload(args)
    check_domain(args, decoded)
    # 2. The model, the request, the edit, and whether it landed (the classifier reads the result).
    from pipelines.evaluation.landing import add_landing  # here: torch loads once the arguments passed

    pipeline = common.load_pipeline(args)
    notes = upload_notes(args, decoded)
    sampling, edit = common.sampling_from(args, pipeline), common.edit_from(args, pipeline)
    with atomic_folder(args.out) as tmp:
        if decoded is None:
            result = pipeline.edit(sampling, edit)
        else:
            result = pipeline.edit_image(decoded.pixels, sampling, edit, regions, edit_anyway=args.edit_anyway)
            record_source(result.settings, decoded)
        add_landing(result, pipeline.model)
        meta = write_outputs(tmp, result, notes)
    out = args.out
    for note in [] if args.json else meta["notes"]:  # --json: they are in the JSON
        print(f"note: {note}")
    common.report(args, meta, f"wrote neutral.png, edited.png, side_by_side.png, metadata.json "
                              f"to {out} in {result.seconds:.2f} s")
    return 0


def write_outputs(tmp, result, notes: list[str]) -> dict:
    prov = provenance_from_settings(result.settings)
    uploaded = prov.source == "upload"
    save_png(result.neutral, tmp / "neutral.png", prov, {"image": "upload" if uploaded else "neutral"})
    save_png(result.edited, tmp / "edited.png", prov, {"image": "edited"})
    pair = comparison(Image.fromarray(result.neutral), Image.fromarray(result.edited), prov)
    save_png(np.asarray(pair), tmp / "side_by_side.png", prov)
    key, mark = MARKS[prov.source]
    meta = {**result.settings, "notes": notes + result.notes, "seconds": round(result.seconds, 3), key: mark}
    (tmp / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
