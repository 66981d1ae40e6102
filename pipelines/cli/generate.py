"""`generate`: one image from anatomy and style prompts."""

from pipelines.cli import arguments as common
from pipelines.core.errors import MedEditError
from pipelines.editing.requests import Edit
from pipelines.export.images import save_png
from pipelines.export.provenance import provenance_from_settings


def add_arguments(parser):
    common.add_model_arguments(parser)
    common.add_sampling_arguments(parser)
    parser.add_argument("--out", required=True, help="output PNG file")


def run(args) -> int:
    common.check_sampling(args)
    out = common.check_writable_file(args.out, suffix=".png")  # lossless only
    pipeline = common.load_pipeline(args)
    sampling = common.sampling_from(args, pipeline)
    image = pipeline.generate(sampling)
    settings = pipeline.settings(sampling, Edit(swap_at=1.0))
    try:
        save_png(image, out, provenance_from_settings(settings))
    except OSError as error:
        raise MedEditError(f"cannot write {out}: {error.strerror}") from None
    common.report(args, {"out": str(out), "settings": settings}, f"wrote {out}")
    return 0
