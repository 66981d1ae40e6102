"""`series`: Bezier frames from neutral to edited, with animations, manifest and a ZIP; or, with
`--image FILE` (PNG, JPEG or DICOM), from an image the user brings to its edit.

With --image the image is inverted and edited as `edit --image` does (image_arguments.py: the
masks, the source prompts typed or found by the classifier, everything checked before the model
loads); the first frame is the image at the model's size, and the export says it is an image
edited by a generative model, not a synthetic one (a DICOM series with new UIDs and an anonymous
patient). Outputs record the file's sha256, never its name or any DICOM element.
"""

import json

from PIL import Image

from pipelines.cli import arguments as common
from pipelines.cli.image_arguments import (add_image_arguments, check_domain, check_image_sampling, check_upload,
                                           record_source, upload_notes)
from pipelines.core.files import atomic_folder
from pipelines.export.images import animation_gif, animation_webp_lossless, save_png
from pipelines.export.provenance import MARKS, provenance_from_settings


def add_arguments(parser):
    common.add_model_arguments(parser)
    common.add_sampling_arguments(parser)
    common.add_edit_arguments(parser)
    common.add_series_arguments(parser)
    add_image_arguments(parser)
    parser.add_argument("--no-dicom", action="store_true", help="leave the DICOM series out of the ZIP")
    parser.add_argument("--out", required=True, help="output folder")


def run(args) -> int:
    # 1. Every number, prompt and path, and the uploaded files, before the model loads.
    check_image_sampling(args)
    common.check_edit(args)
    series = common.check_series(args)
    common.check_writable_folder(args.out)
    decoded, regions = check_upload(args)
    check_domain(args, decoded)
    # 2. The model, the request, the series.
    pipeline = common.load_pipeline(args)
    notes = upload_notes(args, decoded)
    sampling, edit = common.sampling_from(args, pipeline), common.edit_from(args, pipeline)
    with atomic_folder(args.out) as tmp:
        if decoded is None:
            result = pipeline.series(sampling, edit, series)
        else:
            result = pipeline.series_image(decoded.pixels, sampling, edit, series, regions,
                                           edit_anyway=args.edit_anyway)
            record_source(result.settings, decoded)
        meta = write_outputs(tmp, result, notes, dicom=not args.no_dicom)
    out = args.out
    for note in [] if args.json else meta["notes"]:  # --json: they are in the JSON
        print(f"note: {note}")
    common.report(args, meta, f"wrote {len(result.frames)} frames, series.gif, series.webp, series.zip "
                              f"and manifest.json to {out} in {result.seconds:.2f} s")
    return 0


def write_outputs(tmp, result, notes: list[str], dicom: bool) -> dict:
    prov = provenance_from_settings(result.settings)
    frames = [Image.fromarray(f) for f in result.frames]
    extras = [{"frame": i, "t": t} for i, t in enumerate(result.times)]
    for frame, extra in zip(result.frames, extras):
        save_png(frame, tmp / f"frame_{extra['frame']:03d}.png", prov, extra)
    (tmp / "series.gif").write_bytes(animation_gif(frames, provenance=prov))
    (tmp / "series.webp").write_bytes(animation_webp_lossless(frames, provenance=prov))
    from pipelines.export.archive import export_zip  # here: pydicom takes 0.3 s, and a refusal needs none
    export_zip(frames, prov, extras, tmp / "series.zip", dicom=dicom)
    key, mark = MARKS[prov.source]
    meta = {**result.settings, "times": result.times, "seconds": round(result.seconds, 3),
            "notes": notes + result.notes, key: mark}
    (tmp / "manifest.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta

