"""`edit`: neutral.png, edited.png, side_by_side.png and metadata.json from one noise."""

import json
import shutil

import numpy as np
from PIL import Image

from pipelines.cli import arguments as common
from pipelines.export.images import save_png
from pipelines.export.provenance import provenance_from_settings
from pipelines.core.limits import SYNTHETIC_MARK
from pipelines.export.images import side_by_side


def add_arguments(parser):
    common.add_model_arguments(parser)
    common.add_sampling_arguments(parser)
    common.add_edit_arguments(parser)
    parser.add_argument("--out", required=True, help="output folder")


def run(args) -> int:
    pipeline = common.load_pipeline(args)
    sampling, edit = common.sampling_from(args, pipeline), common.edit_from(args, pipeline)
    tmp = common.fresh_output_folder(args.out)
    try:
        result = pipeline.edit(sampling, edit)
        prov = provenance_from_settings(result.settings)
        save_png(result.neutral, tmp / "neutral.png", prov, {"image": "neutral"})
        save_png(result.edited, tmp / "edited.png", prov, {"image": "edited"})
        pair = side_by_side(Image.fromarray(result.neutral), Image.fromarray(result.edited))
        save_png(np.asarray(pair), tmp / "side_by_side.png", prov)
        meta = {**result.settings, "notes": result.notes, "seconds": round(result.seconds, 3),
                "synthetic": SYNTHETIC_MARK}
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
        out = common.publish(tmp, args.out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for note in result.notes:
        print(f"note: {note}")
    common.report(args, meta, f"wrote neutral.png, edited.png, side_by_side.png, metadata.json "
                              f"to {out} in {result.seconds:.2f} s")
    return 0
