"""What a client sends, turned into checked pipeline requests (Sampling, Edit, Series).

The checks themselves live in pipelines.editing.requests; here the app's fields are named as the
API names them and unset values take the chosen model's own defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.core.errors import MedEditError
from pipelines.core.limits import CONTROL_POINTS_DEFAULT, FRAMES_DEFAULT
from pipelines.editing.cost import Work, image_work, request_work, term_count
from pipelines.editing.pipeline import MedEditPipeline
from pipelines.editing.requests import Edit, Sampling, Series, parse_json

from app import state
from app.held_image import HeldImage

SERIES_KEYS = ("frames", "mode", "control_points", "bend")
# Keys that /edit and /series report but that a request does not set.
REPORTED_ONLY = ("model_id", "model_revision", "swap_step", "notes", "seconds", "kind", "landing", "timing")
REQUEST_KEYS = ("model", "anatomy", "style", "to_anatomy", "to_style", "sliders", "swap_at", "seed",
                "steps", "anatomy_scale", "style_scale", "locality") + SERIES_KEYS


def text_field(name: str, value) -> str:
    """A prompt as the client sent it: text or nothing (the pipeline checks its content)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MedEditError(f"{name} must be text, got {type(value).__name__}")
    return value


def flag_field(name: str, value) -> bool:
    """A yes/no field as the client sent it: true, false or nothing (false); 1 or "yes" are refused."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise MedEditError(f"{name} must be true or false, got {type(value).__name__}")
    return value


def json_object(value, name: str, expected: str) -> dict:
    """A dict, or JSON text of one (bounded in size and depth); a clear message otherwise."""
    if isinstance(value, str):
        try:
            value = parse_json(name, value)
        except MedEditError as error:
            raise MedEditError(f"{error} ({name} must be {expected})") from None
    if not isinstance(value, dict):
        raise MedEditError(f"{name} must be {expected}, got {type(value).__name__}")
    return value


def parse_sliders(value, pipeline: MedEditPipeline) -> dict[str, float]:
    """Sliders as a JSON object (or dict): {"hair": 1.5, "ruler": -1}; zeros dropped."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    value = json_object(value, "sliders", 'a JSON object like {"hair": 1.5}')
    checked = Edit(sliders=value).sliders  # names are text; scales are finite and in range
    for name, scale in checked.items():
        pipeline.model.info.slider(name, scale)  # unknown names listed; scales within the model's range
    return {name: scale for name, scale in checked.items() if scale != 0.0}


@dataclass
class Request:
    """One checked request: the model it runs on and what to compute (from an image the user
    brought when `image` is set)."""
    source: str
    pipeline: MedEditPipeline
    sampling: Sampling
    edit: Edit | None = None
    series: Series | None = None
    image: HeldImage | None = None

    def work(self, exported: bool = False) -> Work:
        """What the request costs, counted before it runs (pipelines/editing/cost.py)."""
        if self.image is None:
            return request_work(self.sampling, self.edit, self.series, exported)
        return image_work(self.sampling, self.edit, term_count(self.edit), self.series, exported)


def sampling_request(model, anatomy, style, seed, steps, anatomy_scale, style_scale) -> Request:
    source = state.check_model_choice(model)
    pipeline = state.get_pipeline(source)
    s = Sampling.with_defaults(pipeline.model.info.defaults, text_field("anatomy", anatomy),
                               text_field("style", style), 0 if seed is None else seed, steps,
                               anatomy_scale, style_scale)
    return Request(source, pipeline, s)


def edit_request(model, anatomy, style, to_anatomy, to_style, sliders, swap_at, seed, steps, anatomy_scale,
                 style_scale, locality=None, refresh=None) -> Request:
    """`refresh` acts on an uploaded image's edit only (Edit.refresh)."""
    request = sampling_request(model, anatomy, style, seed, steps, anatomy_scale, style_scale)
    request.edit = Edit.with_defaults(request.pipeline.model.info.defaults, text_field("to_anatomy", to_anatomy),
                                      text_field("to_style", to_style), parse_sliders(sliders, request.pipeline),
                                      swap_at, locality, 0.0 if refresh is None else refresh)
    return request


def series_request(frames, mode, control_points, bend, **edit_fields) -> Request:
    request = edit_request(**edit_fields)
    request.series = Series(FRAMES_DEFAULT if frames is None else frames, "latent" if mode is None else mode,
                            CONTROL_POINTS_DEFAULT if control_points is None else control_points,
                            0.0 if bend is None else bend)
    return request


def parse_settings(value) -> dict:
    """The settings /edit or /series returned (JSON text or an object), as request fields."""
    value = json_object(value, "settings", "the JSON object that /edit or /series returned")
    if value.get("source") == "upload":
        raise MedEditError("these settings are of an edit of an uploaded image, which the server does not keep: "
                           "/edit_image and /series_image return their export themselves")
    unknown = sorted(set(value) - set(REQUEST_KEYS) - set(REPORTED_ONLY))
    if unknown:
        raise MedEditError(f"unknown settings {', '.join(map(repr, unknown))}; "
                           f"known: {', '.join(REQUEST_KEYS)}")
    if value.get("kind") == "series" and not any(k in value for k in SERIES_KEYS):
        raise MedEditError("series settings need frames and mode")
    return {k: v for k, v in value.items() if k in REQUEST_KEYS}


def settings_request(value) -> Request:
    """The request that the settings describe: a series when they hold series fields."""
    fields = parse_settings(value)
    edit_fields = {k: fields.get(k) for k in REQUEST_KEYS if k not in SERIES_KEYS}
    if any(k in fields for k in SERIES_KEYS):
        return series_request(**{k: fields.get(k) for k in SERIES_KEYS}, **edit_fields)
    return edit_request(**edit_fields)
