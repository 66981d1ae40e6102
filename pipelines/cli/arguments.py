"""Arguments and outputs that generate, edit and series share."""

import json
import os
import tempfile
from pathlib import Path

from pipelines.core.errors import MedEditError
from pipelines.editing.pipeline import MedEditPipeline
from pipelines.editing.requests import Edit, Sampling
from pipelines.model.loading import load_model


def add_model_arguments(parser):
    parser.add_argument("--model", default=None,
                        help="'embedded' (default, or $MEDEDIT_MODEL), a model folder or a Hub repo id")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def add_sampling_arguments(parser):
    parser.add_argument("--anatomy", default="", help="anatomy prompt of the source image")
    parser.add_argument("--style", default="", help="style (acquisition) prompt of the source image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (model default)")
    parser.add_argument("--anatomy-scale", type=float, default=None, help="anatomy guidance")
    parser.add_argument("--style-scale", type=float, default=None, help="style guidance")


def add_edit_arguments(parser):
    parser.add_argument("--to-anatomy", default="", help="edited anatomy prompt (default: unchanged)")
    parser.add_argument("--to-style", default="", help="edited style prompt (default: unchanged)")
    parser.add_argument("--attribute", action="append", default=[], metavar="NAME=SCALE",
                        help="attribute slider, e.g. hair=1.0 or ruler=-1 (repeatable)")
    parser.add_argument("--swap-at", type=float, default=None,
                        help="fraction of steps before the prompt swap: earlier = stronger edit")
    parser.add_argument("--locality", type=float, default=None,
                        help="0: the whole image may change; up to 0.9: only where the edit acts "
                             "(default: the model's)")


def sampling_from(args, pipeline):
    return Sampling.with_defaults(pipeline.model.info.defaults, args.anatomy, args.style, args.seed,
                                  args.steps, args.anatomy_scale, args.style_scale)


def edit_from(args, pipeline):
    sliders = {}
    for item in args.attribute:
        name, sep, value = item.partition("=")
        try:
            sliders[name.strip()] = float(value) if sep else 1.0
        except ValueError:
            raise MedEditError(f"--attribute takes NAME=SCALE, got {item!r}") from None
    for name in sliders:
        pipeline.model.info.attribute(name)
    return Edit.with_defaults(pipeline.model.info.defaults, args.to_anatomy, args.to_style, sliders,
                              args.swap_at, args.locality)


def load_pipeline(args):
    return MedEditPipeline(load_model(args.model))


def fresh_output_folder(out: str) -> Path:
    """A temporary sibling folder to write into; `publish` renames it into place at the end."""
    target = Path(out)
    if target.exists() and not target.is_dir():
        raise MedEditError(f"--out {out} exists and is not a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as error:
        raise MedEditError(f"cannot write to {target.parent}: {error.strerror}") from None


def publish(tmp: Path, out: str) -> Path:
    target = Path(out)
    if target.exists():
        for item in tmp.iterdir():
            os.replace(item, target / item.name)
        tmp.rmdir()
    else:
        os.replace(tmp, target)
    return target


def report(args, payload: dict, text: str):
    print(json.dumps(payload, indent=2) if args.json else text)
