"""Turn what the UI or an API client sends into pipeline calls, and results into components.

Every value is validated here or in pipelines.editing.requests (the UI's sliders do not guard the API).
A MedEditError becomes a gr.Error with its message; any other exception is logged on the server
and reported as a short message, so no traceback ever reaches the user.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
import threading
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from pipelines.editing.pipeline import MedEditPipeline
from pipelines.core.errors import MedEditError
from pipelines.export.archive import export_zip
from pipelines.export.images import animation_gif, difference_map, side_by_side
from pipelines.export.provenance import provenance_from_settings as provenance
from pipelines.model.embedded import EMBEDDED, EMBEDDED_FOLDER
from pipelines.model.loading import load_model
from pipelines.core.lru import LRU
from pipelines.evaluation.metrics import EDIT_FOOTPRINT, edit_footprint
from pipelines.model.info import INFO_FILE, ModelInfo, read_model_info
from pipelines.editing.requests import Edit, Sampling, Series

log = logging.getLogger("mededit.app")

DISPLAY_SIZE = 384  # 64-px images are shown enlarged (nearest neighbour); exports keep true pixels
MAX_JSON_CHARS = 20_000
SERIES_KEYS = ("frames", "mode", "control_points", "bend")
# Keys that /edit and /series report but that a request does not set.
REPORTED_ONLY = ("model_id", "model_revision", "swap_step", "notes", "seconds", "kind")
REQUEST_KEYS = ("model", "anatomy", "style", "to_anatomy", "to_style", "sliders", "swap_at", "seed",
                "steps", "anatomy_scale", "style_scale", "locality") + SERIES_KEYS

try:  # On a Hugging Face ZeroGPU Space, spaces.GPU lends a GPU to the decorated call.
    import spaces

    gpu, ON_ZERO_GPU = spaces.GPU, True
except ImportError:
    def gpu(fn):
        return fn

    ON_ZERO_GPU = False


# ---------------------------------------------------------------- errors

def user_errors(fn):
    """MedEditError -> gr.Error(message); anything else -> logged, short gr.Error, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except MedEditError as error:
            raise gr.Error(str(error), print_exception=False) from None
        except Exception as error:  # noqa: BLE001 - the server keeps serving, the log keeps the detail
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"internal error ({type(error).__name__}); the server log has the details",
                           print_exception=False) from None

    return wrapper


# ---------------------------------------------------------------- models

def model_choices() -> list[str]:
    """The models the picker offers: $MEDEDIT_MODEL (comma-separated), else the embedded one."""
    listed = [s.strip() for s in os.environ.get("MEDEDIT_MODEL", "").split(",") if s.strip()]
    return list(dict.fromkeys(listed)) or [EMBEDDED]


def default_model() -> str:
    return model_choices()[0]


def check_model_choice(source) -> str:
    """Only the listed models may be loaded: an API client must not point at arbitrary paths."""
    if source is None or source == "":
        return default_model()
    choices = model_choices()
    if not isinstance(source, str) or source not in choices:
        raise MedEditError(f"unknown model {source!r}; this server offers: {', '.join(choices)}")
    return source


def model_info(source: str) -> ModelInfo:
    """What a model offers, read without loading weights (for building the sliders)."""
    folder = EMBEDDED_FOLDER if source == EMBEDDED else Path(source)
    try:
        return read_model_info(folder)
    except MedEditError:
        return ModelInfo.embedded_default()  # not loadable yet (or a Hub model): the registry


_pipelines: dict[str, MedEditPipeline] = {}
_load_lock = threading.Lock()


def get_pipeline(source=None) -> MedEditPipeline:
    """One MedEditPipeline per model per process, loaded on first use."""
    source = check_model_choice(source)
    pipeline = _pipelines.get(source)
    if pipeline is not None:
        return pipeline
    if source == EMBEDDED and not (EMBEDDED_FOLDER / INFO_FILE).exists():
        raise MedEditError(f"the embedded model is not installed ({EMBEDDED_FOLDER} is missing or "
                           "incomplete); set MEDEDIT_MODEL to a MedEdit model folder")
    with _load_lock:
        if source not in _pipelines:
            try:
                _pipelines[source] = MedEditPipeline(load_model(source))
            except MedEditError as error:
                raise MedEditError(f"cannot load model {source!r}: {error}") from None
            except Exception as error:  # noqa: BLE001 - corrupt files, missing packages...
                log.exception("loading %s failed", source)
                raise MedEditError(f"cannot load model {source!r}: {type(error).__name__}: {error}") from None
        return _pipelines[source]


# ---------------------------------------------------------------- requests

def text_field(name: str, value) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MedEditError(f"{name} must be text, got {type(value).__name__}")
    return value


def json_object(value, what: str, expected: str) -> dict:
    """A dict, or a JSON string of one, bounded in size; a clear message otherwise."""
    if isinstance(value, str):
        if len(value) > MAX_JSON_CHARS:
            raise MedEditError(f"{what} JSON has {len(value)} characters; at most {MAX_JSON_CHARS}")
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise MedEditError(f"{what} must be {expected}: {error}") from None
    if not isinstance(value, dict):
        raise MedEditError(f"{what} must be {expected}, got {type(value).__name__}")
    return value


def parse_sliders(value, pipeline: MedEditPipeline) -> dict[str, float]:
    """Sliders as a JSON object string (or dict): {"hair": 1.5, "ruler": -1}; zeros dropped."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    value = json_object(value, "sliders", 'a JSON object like {"hair": 1.5}')
    for name in value:
        pipeline.model.info.attribute(str(name))  # unknown names: the message lists the valid ones
    checked = Edit(sliders=value).sliders  # type, finiteness and range
    return {name: scale for name, scale in checked.items() if scale != 0.0}


def sampling(pipeline, anatomy, style, seed, steps, anatomy_scale, style_scale) -> Sampling:
    return Sampling.with_defaults(pipeline.model.info.defaults, anatomy, style, 0 if seed is None else seed,
                                  steps, anatomy_scale, style_scale)


def edit(pipeline, to_anatomy, to_style, sliders, swap_at, locality=None) -> Edit:
    return Edit.with_defaults(pipeline.model.info.defaults, to_anatomy, to_style,
                              parse_sliders(sliders, pipeline), swap_at, locality)


def random_seed() -> int:
    return random.randint(0, 2**31 - 1)


# ---------------------------------------------------------------- computing (GPU work when a GPU is lent)

_results = LRU(64)  # whole results by request: examples and repeated requests return at once


def _progress_callback(progress, steps: int, what: str):
    if progress is None:
        return None
    return lambda step: progress((min(step, steps), steps), desc=what, unit="steps")


@gpu
def _compute(kind: str, source: str, s: Sampling, e: Edit | None, series: Series | None, progress):
    """The GPU work. Arguments are plain picklable requests (ZeroGPU runs this in another process)."""
    pipeline = get_pipeline(source)
    callback = _progress_callback(progress, s.steps, kind)
    if kind == "generate":
        return pipeline.generate(s, callback)
    if kind == "edit":
        return pipeline.edit(s, e, callback)
    return pipeline.series(s, e, series, callback)


def compute(kind: str, source: str, s: Sampling, e: Edit | None = None, series: Series | None = None,
            progress=None):
    key = (kind, source, get_pipeline(source).model.revision, repr(s), repr(e), repr(series))
    cached = _results.get(key)
    if cached is not None:
        return cached
    # gr.Progress cannot cross into ZeroGPU's worker process.
    return _results.put(key, _compute(kind, source, s, e, series, None if ON_ZERO_GPU else progress))


# ---------------------------------------------------------------- images for display and files

def enlarge(image: np.ndarray | Image.Image, size: int = DISPLAY_SIZE) -> Image.Image:
    """Nearest-neighbour enlargement for viewing: every true pixel becomes a crisp square."""
    image = image if isinstance(image, Image.Image) else Image.fromarray(image)
    factor = max(1, size // max(image.size))
    return image.resize((image.width * factor, image.height * factor), Image.NEAREST)


_files = Path(tempfile.mkdtemp(prefix="mededit-app-"))
atexit.register(shutil.rmtree, _files, ignore_errors=True)


def _file_name(prefix: str, settings: dict, suffix: str) -> Path:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return _files / f"{prefix}-seed{settings.get('seed', 0)}-{digest}{suffix}"


def gif_file(frames: list[np.ndarray], settings: dict, display: bool) -> str:
    """A looping GIF on disk (a path keeps gradio from re-encoding it, so it animates)."""
    images = [enlarge(f) if display else Image.fromarray(f) for f in frames]
    path = _file_name("mededit-series-view" if display else "mededit-series", settings, ".gif")
    path.write_bytes(animation_gif(images, provenance=provenance(settings)))
    return str(path)


def zip_file(kind: str, frames: list[np.ndarray], settings: dict, times: list[float] | None = None) -> str:
    """The export ZIP: frames with provenance, side-by-side, GIF, WebP, DICOM, manifest (sha256)."""
    images = [Image.fromarray(f) for f in frames]
    if kind == "edit":
        extras = [{"image": "neutral", "t": 0.0}, {"image": "edited", "t": 1.0}]
    else:
        extras = [{"frame": i, "t": t} for i, t in enumerate(times)]
    path = _file_name(f"mededit-{kind}", settings, ".zip")
    export_zip(images, provenance(settings), extras, path, before=images[0], after=images[-1])
    return str(path)


def report(result, source: str, kind: str) -> dict:
    """The settings actually used, with the model choice: enough to reproduce the result."""
    return {"model": source, **result.settings, "kind": kind}


def notes_markdown(result, extra: str = "") -> str:
    lines = [f"- {n}" for n in result.notes]
    timing = f"{result.seconds:.2f} s"
    if getattr(result, "prefix_cached", False):
        timing += ", shared prefix reused from the cache"
    lines.append(f"- computed in {timing}{extra}")
    lines.append("- shown enlarged with nearest neighbour; downloads hold the true pixels; "
                 "**synthetic image, not a patient**")
    return "\n".join(lines)


# ---------------------------------------------------------------- API endpoints (simple inputs)

@user_errors
def api_generate(anatomy, style, seed, steps, anatomy_scale, style_scale, model,
                 progress=gr.Progress()):
    """One image from the source prompts. Returns (PNG, settings)."""
    source = check_model_choice(model)
    pipeline = get_pipeline(source)
    s = sampling(pipeline, text_field("anatomy", anatomy), text_field("style", style), seed, steps,
                 anatomy_scale, style_scale)
    image = compute("generate", source, s, progress=progress)
    settings = {"model": source, "model_id": pipeline.model.model_id,
                "model_revision": pipeline.model.revision, "anatomy": s.anatomy, "style": s.style,
                "seed": s.seed, "steps": s.steps, "anatomy_scale": s.anatomy_scale,
                "style_scale": s.style_scale, "kind": "generate"}
    return Image.fromarray(image), settings


def _edit_request(model, anatomy, style, to_anatomy, to_style, sliders, swap_at, seed, steps,
                  anatomy_scale, style_scale, locality=None):
    source = check_model_choice(model)
    pipeline = get_pipeline(source)
    s = sampling(pipeline, text_field("anatomy", anatomy), text_field("style", style), seed, steps,
                 anatomy_scale, style_scale)
    e = edit(pipeline, text_field("to_anatomy", to_anatomy), text_field("to_style", to_style), sliders,
             swap_at, locality)
    return source, pipeline, s, e


@user_errors
def api_edit(anatomy, style, to_anatomy, to_style, sliders, swap_at, seed, steps, anatomy_scale,
             style_scale, model, locality=None, progress=gr.Progress()):
    """Neutral and edited image from one noise. Returns (neutral, edited, difference, side by side, settings)."""
    source, pipeline, s, e = _edit_request(model, anatomy, style, to_anatomy, to_style, sliders, swap_at,
                                           seed, steps, anatomy_scale, style_scale, locality)
    result = compute("edit", source, s, e, progress=progress)
    before, after = Image.fromarray(result.neutral), Image.fromarray(result.edited)
    settings = {**report(result, source, "edit"), "notes": result.notes}
    return before, after, difference_map(before, after), side_by_side(before, after), settings


@user_errors
def api_series(anatomy, style, to_anatomy, to_style, sliders, swap_at, seed, steps, anatomy_scale,
               style_scale, mode, frames, control_points, bend, model, locality=None,
               progress=gr.Progress()):
    """A Bezier series from neutral to edited. Returns (frames, GIF, settings)."""
    source, pipeline, s, e = _edit_request(model, anatomy, style, to_anatomy, to_style, sliders, swap_at,
                                           seed, steps, anatomy_scale, style_scale, locality)
    series = Series(16 if frames is None else frames, mode or "latent",
                    6 if control_points is None else control_points, 0.0 if bend is None else bend)
    result = compute("series", source, s, e, series, progress)
    settings = {**report(result, source, "series"), "notes": result.notes}
    frames_out = [(Image.fromarray(f), f"t={t:.2f}") for f, t in zip(result.frames, result.times)]
    return frames_out, gif_file(result.frames, settings, display=False), settings


@user_errors
def api_export(settings, progress=gr.Progress()):
    """The export ZIP for the settings that /edit or /series returned (recomputed from the caches)."""
    request = parse_settings(settings)
    source, pipeline, s, e = _edit_request(
        request.get("model"), request.get("anatomy"), request.get("style"), request.get("to_anatomy"),
        request.get("to_style"), request.get("sliders"), request.get("swap_at"), request.get("seed"),
        request.get("steps"), request.get("anatomy_scale"), request.get("style_scale"),
        request.get("locality"))
    if any(k in request for k in SERIES_KEYS):
        series = Series(request.get("frames", 16), request.get("mode", "latent"),
                        request.get("control_points", 6), request.get("bend", 0.0))
        result = compute("series", source, s, e, series, progress)
        return zip_file("series", result.frames, report(result, source, "series"), result.times)
    result = compute("edit", source, s, e, progress=progress)
    return zip_file("edit", [result.neutral, result.edited], report(result, source, "edit"))


def parse_settings(value) -> dict:
    value = json_object(value, "settings", "the JSON object that /edit or /series returned")
    unknown = sorted(set(value) - set(REQUEST_KEYS) - set(REPORTED_ONLY))
    if unknown:
        raise MedEditError(f"unknown settings {', '.join(map(repr, unknown))}; "
                           f"known: {', '.join(REQUEST_KEYS)}")
    if value.get("kind") == "series" and not any(k in value for k in SERIES_KEYS):
        raise MedEditError("series settings need frames and mode")
    return {k: v for k, v in value.items() if k in REQUEST_KEYS}


# ---------------------------------------------------------------- UI events (per-session state)

def slider_json(names: list[str], values) -> dict:
    return {n: float(v) for n, v in zip(names, values) if v is not None and float(v) != 0.0}


@user_errors
def ui_edit(model, anatomy, style, to_anatomy, to_style, swap_at, seed, steps, anatomy_scale,
            style_scale, locality, state, names, values, progress=None):
    source, pipeline, s, e = _edit_request(model, anatomy, style, to_anatomy, to_style,
                                           slider_json(names, values), swap_at, seed, steps,
                                           anatomy_scale, style_scale, locality)
    result = compute("edit", source, s, e, progress=progress)
    settings = report(result, source, "edit")
    before, after = Image.fromarray(result.neutral), Image.fromarray(result.edited)
    shown_before, shown_after = enlarge(before), enlarge(after)
    changed = float(edit_footprint(result.neutral, result.edited).mean())
    state = {**(state or {}), "edit": {"frames": [result.neutral, result.edited], "settings": settings}}
    return ((shown_before, shown_after), side_by_side(shown_before, shown_after),
            enlarge(difference_map(before, after)), settings,
            notes_markdown(result, f"; {changed:.0%} of pixels changed visibly (by more than "
                                   f"{round(EDIT_FOOTPRINT * 255)} of 255 levels)"), state)


@user_errors
def ui_series(model, anatomy, style, to_anatomy, to_style, swap_at, seed, steps, anatomy_scale,
              style_scale, locality, mode, frames, control_points, bend, state, names, values,
              progress=None):
    source, pipeline, s, e = _edit_request(model, anatomy, style, to_anatomy, to_style,
                                           slider_json(names, values), swap_at, seed, steps,
                                           anatomy_scale, style_scale, locality)
    result = compute("series", source, s, e, Series(frames, mode, control_points, bend), progress)
    settings = report(result, source, "series")
    gallery = [(enlarge(f), f"t={t:.2f}") for f, t in zip(result.frames, result.times)]
    state = {**(state or {}), "series": {"frames": result.frames, "times": result.times, "settings": settings}}
    return gallery, gif_file(result.frames, settings, display=True), settings, notes_markdown(result), state


@user_errors
def ui_export(kind: str, state):
    shown = (state or {}).get(kind)
    if not shown:
        what = "an edit" if kind == "edit" else "a series"
        raise MedEditError(f"nothing to export yet: make {what} first")
    return zip_file(kind, shown["frames"], shown["settings"], shown.get("times"))


def ui_load_model(model):
    """Load the picked model; the status line says what was loaded or why it could not be."""
    try:
        pipeline = get_pipeline(model)
    except MedEditError as error:
        return f"⚠️ **Model not loaded.** {error}", None
    info = pipeline.model.info
    return (f"Model **{info.name}** (`{pipeline.model.model_id}`, revision `{pipeline.model.revision}`), "
            f"{len(info.attributes)} attributes, {info.image_size} px."), info
