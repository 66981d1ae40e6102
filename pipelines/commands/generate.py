"""`generate`: one image from anatomy and style prompts."""

from pathlib import Path

from pipelines.commands import common
from pipelines.errors import MedEditError
from pipelines.requests import Edit


def add_arguments(parser):
    common.add_model_arguments(parser)
    common.add_sampling_arguments(parser)
    parser.add_argument("--out", required=True, help="output PNG file")


def run(args) -> int:
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise MedEditError("--out must be a .png file (lossless)")
    pipeline = common.load_pipeline(args)
    sampling = common.sampling_from(args, pipeline)
    image = pipeline.generate(sampling)
    settings = pipeline.settings(sampling, Edit(swap_at=1.0))
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        common.save_png(image, tmp, common.provenance(settings))
        tmp.replace(out)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise MedEditError(f"cannot write {out}: {error.strerror}") from None
    common.report(args, {"out": str(out), "settings": settings}, f"wrote {out}")
    return 0
