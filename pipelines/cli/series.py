"""`series`: Bezier frames from neutral to edited, with animations, manifest and a ZIP."""

import json

from PIL import Image

from pipelines.cli import arguments as common
from pipelines.core.files import atomic_folder
from pipelines.core.limits import SYNTHETIC_MARK
from pipelines.export.archive import export_zip
from pipelines.export.images import animation_gif, animation_webp_lossless, save_png
from pipelines.export.provenance import provenance_from_settings


def add_arguments(parser):
    common.add_model_arguments(parser)
    common.add_sampling_arguments(parser)
    common.add_edit_arguments(parser)
    common.add_series_arguments(parser)
    parser.add_argument("--no-dicom", action="store_true", help="leave the DICOM series out of the ZIP")
    parser.add_argument("--out", required=True, help="output folder")


def run(args) -> int:
    common.check_sampling(args)
    common.check_edit(args)
    series = common.check_series(args)
    common.check_writable_folder(args.out)
    pipeline = common.load_pipeline(args)
    sampling, edit = common.sampling_from(args, pipeline), common.edit_from(args, pipeline)
    with atomic_folder(args.out) as tmp:
        result = pipeline.series(sampling, edit, series)
        prov = provenance_from_settings(result.settings)
        frames = [Image.fromarray(f) for f in result.frames]
        extras = [{"frame": i, "t": t} for i, t in enumerate(result.times)]
        for frame, extra in zip(result.frames, extras):
            save_png(frame, tmp / f"frame_{extra['frame']:03d}.png", prov, extra)
        (tmp / "series.gif").write_bytes(animation_gif(frames, provenance=prov))
        (tmp / "series.webp").write_bytes(animation_webp_lossless(frames, provenance=prov))
        export_zip(frames, prov, extras, tmp / "series.zip", dicom=not args.no_dicom)
        meta = {**result.settings, "times": result.times, "seconds": round(result.seconds, 3),
                "notes": result.notes, "synthetic": SYNTHETIC_MARK}
        (tmp / "manifest.json").write_text(json.dumps(meta, indent=2) + "\n")
    out = args.out
    common.report(args, meta, f"wrote {len(frames)} frames, series.gif, series.webp, series.zip "
                              f"and manifest.json to {out} in {result.seconds:.2f} s")
    return 0
