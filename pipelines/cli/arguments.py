"""Arguments and outputs the commands share, and the checks every command runs before its work.

The pattern each command follows: `run` first checks every number, prompt and path with the
`check_*` helpers below (no model, no torch: a bad value is refused within a second, and nothing
is written), then loads the model, then writes its outputs through a temporary sibling folder.
This module imports nothing heavy at its top, so argument errors come before torch is loaded.
"""

import json
import os
import re
import tempfile
from pathlib import Path

from pipelines.core.errors import MedEditError
from pipelines.core.files import write_atomic
from pipelines.core.limits import (CONTROL_POINTS_DEFAULT, FRAMES_DEFAULT, LOCALITY_RANGE, SCALE_RANGE,
                                   STEPS_RANGE, SWAP_RANGE)
from pipelines.editing.requests import Edit, Sampling, Series
from pipelines.model.offered import check_sliders

# Valid stand-ins for the settings a model's mededit.json fills in: checking a request before the
# model is loaded checks only the values the user gave.
STAND_IN_DEFAULTS = {"steps": STEPS_RANGE[0], "anatomy_scale": SCALE_RANGE[0], "style_scale": SCALE_RANGE[0],
                     "swap_at": SWAP_RANGE[0], "locality": LOCALITY_RANGE[0]}
HUB_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


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


def add_series_arguments(parser):
    parser.add_argument("--frames", type=int, default=FRAMES_DEFAULT)
    parser.add_argument("--mode", default="latent", help="latent (the paper's) or embedding")
    parser.add_argument("--control-points", type=int, default=CONTROL_POINTS_DEFAULT,
                        help="latent mode: neutral + swaps from weak to strong")
    parser.add_argument("--bend", type=float, default=0.0,
                        help="embedding mode: -1 (edit arrives late) .. 1 (early)")


# --- checks before any model loads -------------------------------------------------------------

def check_model_source(args) -> None:
    """An explicit --model that names a path must be a folder, a Hub repo id must be cached or
    reachable; the loader checks the rest."""
    source = getattr(args, "model", None)
    if not source or source == "embedded" or Path(source).expanduser().is_dir():
        return
    if Path(source).expanduser().exists():
        raise MedEditError(f"--model {source} is a file; give a model folder or a Hub repo id like 'owner/name'")
    if not HUB_REPO_ID.match(source) or ".." in source:
        raise MedEditError(f"--model {source}: no such folder, and not a Hub repo id like 'owner/name'")
    # A Hub model's files now, before torch: downloaded, or from the cache, or refused in one line.
    from pipelines.model.hub import resolve_source  # huggingface_hub: only a Hub id needs it
    resolve_source(source)


def check_sampling(args) -> Sampling:
    """The prompts, seed, steps and scales as given (the model's defaults stand in for unset ones)."""
    check_model_source(args)
    return Sampling.with_defaults(STAND_IN_DEFAULTS, args.anatomy, args.style, args.seed, args.steps,
                                  args.anatomy_scale, args.style_scale)


def parse_attributes(items: list[str]) -> dict[str, float]:
    """NAME=SCALE each; a bare NAME is refused (a silent 1.0 would be a guess at the strength)."""
    sliders = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise MedEditError(f"--attribute takes NAME=SCALE, got {item!r}; e.g. {name.strip() or 'hair'}=1 "
                               "to add it, =-1 to remove it")
        try:
            sliders[name.strip()] = float(value)
        except ValueError:
            raise MedEditError(f"--attribute takes NAME=SCALE, got {item!r}") from None
    return sliders


def check_edit(args) -> Edit:
    """The edited prompts, sliders' scales and names, swap point, locality and refresh. The names
    are read from the model's files (offered.py) where they say; a Hub model's on load."""
    edit = Edit.with_defaults(STAND_IN_DEFAULTS, args.to_anatomy, args.to_style,
                              parse_attributes(args.attribute), args.swap_at, args.locality, args.refresh)
    check_sliders(args.model, edit.sliders)
    return edit


def check_series(args) -> Series:
    return Series(args.frames, args.mode, args.control_points, args.bend)


def _existing_ancestor(path: Path) -> Path:
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    return ancestor


def _probe_writable(folder: Path, flag: str, path: Path) -> None:
    """Make and remove an empty temporary folder: the only test that holds for root, read-only
    mounts and /proc alike (os.access answers yes to root everywhere)."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".mededit-probe-", dir=folder))
    except OSError as error:
        raise MedEditError(f"{flag} {path}: cannot write in {folder} ({error.strerror})") from None


def check_writable_file(path, flag: str = "--out", suffix: str | None = None) -> Path:
    """A file that can be (re)written: its folder is a folder we can write in, or can be made."""
    path = Path(path)
    if suffix and path.suffix.lower() != suffix:
        raise MedEditError(f"{flag} must be a {suffix} file, got {path}")
    if path.is_dir():
        raise MedEditError(f"{flag} {path} is a folder; give a file name")
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        raise MedEditError(f"{flag} {path}: {ancestor} is a file, not a folder")
    _probe_writable(ancestor, flag, path)
    return path


def check_writable_folder(path, flag: str = "--out", empty: bool = False) -> Path:
    """A folder to write into: it exists (and is empty, if asked) or can be made next to it."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise MedEditError(f"{flag} {path} exists and is not a folder")
        if empty and any(path.iterdir()):
            raise MedEditError(f"{flag} {path} is not empty; choose a new or empty folder")
        _probe_writable(path, flag, path)
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        raise MedEditError(f"{flag} {path}: {ancestor} is a file, not a folder")
    _probe_writable(ancestor, flag, path)
    return path


# --- model and outputs -------------------------------------------------------------------------

def sampling_from(args, pipeline):
    return Sampling.with_defaults(pipeline.model.info.defaults, args.anatomy, args.style, args.seed,
                                  args.steps, args.anatomy_scale, args.style_scale)


def edit_from(args, pipeline):
    sliders = parse_attributes(args.attribute)
    for name, scale in sliders.items():
        pipeline.model.info.slider(name, scale)
    return Edit.with_defaults(pipeline.model.info.defaults, args.to_anatomy, args.to_style, sliders,
                              args.swap_at, args.locality, args.refresh)


def load_pipeline(args):
    # Imported here: torch and the model load only once the arguments have passed their checks.
    from pipelines.editing.pipeline import MedEditPipeline
    from pipelines.evaluation.domain import with_domain_check
    from pipelines.model.loading import load_model

    return with_domain_check(MedEditPipeline(load_model(args.model)), args.model or "embedded")


def report(args, payload: dict, text: str):
    print(json.dumps(payload, indent=2) if args.json else text)


def write_report(args, report: dict, print_table) -> None:
    """A measuring command's report: to --out as JSON (if given), and printed as JSON or a table."""
    text = json.dumps(report, indent=2)
    if args.out:
        write_atomic(args.out, (text + "\n").encode())
    if args.json:
        print(text)
    else:
        print_table(report)
