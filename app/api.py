"""The named endpoints /generate, /edit, /series and /export: simple inputs (text and numbers;
sliders and settings as JSON objects), PNG files back. Their names and parameter names are stable:
clients call them through gradio_client.
"""

from __future__ import annotations

import gradio as gr
from PIL import Image

from pipelines.core.limits import CONTROL_POINTS_DEFAULT, FRAMES_DEFAULT
from pipelines.export.images import difference_map, side_by_side

from app import inputs, state
from app.errors import user_errors
from app.outputs import gif_file, report, zip_file


@user_errors
def api_generate(anatomy, style, seed, steps, anatomy_scale, style_scale, model, progress=gr.Progress()):
    """One image from the source prompts. Returns (PNG, settings)."""
    request = inputs.sampling_request(model, anatomy, style, seed, steps, anatomy_scale, style_scale)
    s, loaded = request.sampling, request.pipeline.model
    image = state.compute("generate", request.source, s, progress=progress)
    settings = {"model": request.source, "model_id": loaded.model_id, "model_revision": loaded.revision,
                "anatomy": s.anatomy, "style": s.style, "seed": s.seed, "steps": s.steps,
                "anatomy_scale": s.anatomy_scale, "style_scale": s.style_scale, "kind": "generate"}
    return Image.fromarray(image), settings


@user_errors
def api_edit(anatomy, style, to_anatomy, to_style, sliders, swap_at, seed, steps, anatomy_scale,
             style_scale, model, locality=None, progress=gr.Progress()):
    """Neutral and edited image from one noise. Returns (neutral, edited, difference, side by side, settings)."""
    request = inputs.edit_request(model, anatomy, style, to_anatomy, to_style, sliders, swap_at, seed, steps,
                                  anatomy_scale, style_scale, locality)
    result = state.compute("edit", request.source, request.sampling, request.edit, progress=progress)
    before, after = Image.fromarray(result.neutral), Image.fromarray(result.edited)
    settings = {**report(result, request.source, "edit"), "notes": result.notes}
    return before, after, difference_map(before, after), side_by_side(before, after), settings


@user_errors
def api_series(anatomy, style, to_anatomy, to_style, sliders, swap_at, seed, steps, anatomy_scale,
               style_scale, mode, frames, control_points, bend, model, locality=None,
               progress=gr.Progress()):
    """A Bezier series from neutral to edited. Returns (frames, GIF, settings)."""
    request = inputs.series_request(frames, mode, control_points, bend, model=model, anatomy=anatomy,
                                    style=style, to_anatomy=to_anatomy, to_style=to_style, sliders=sliders,
                                    swap_at=swap_at, seed=seed, steps=steps, anatomy_scale=anatomy_scale,
                                    style_scale=style_scale, locality=locality)
    result = state.compute("series", request.source, request.sampling, request.edit, request.series, progress)
    settings = {**report(result, request.source, "series"), "notes": result.notes}
    frames_out = [(Image.fromarray(f), f"t={t:.2f}") for f, t in zip(result.frames, result.times)]
    return frames_out, gif_file(result.frames, settings, display=False), settings


@user_errors
def api_export(settings, progress=gr.Progress()):
    """The export ZIP for the settings that /edit or /series returned (recomputed from the caches)."""
    request = inputs.settings_request(settings)
    if request.series is not None:
        result = state.compute("series", request.source, request.sampling, request.edit, request.series, progress)
        return zip_file("series", result.frames, report(result, request.source, "series"), result.times)
    result = state.compute("edit", request.source, request.sampling, request.edit, progress=progress)
    return zip_file("edit", [result.neutral, result.edited], report(result, request.source, "edit"))


def add_api_endpoints(defaults: dict):
    """The endpoints on hidden components: never clicked, only called by name."""
    with gr.Column(visible=False):
        text = lambda label, value="": gr.Textbox(value, label=label)  # noqa: E731
        number = lambda label, value: gr.Number(value, label=label)  # noqa: E731  # no bounds: the handlers check
        image = lambda label: gr.Image(label=label, format="png", type="pil")  # noqa: E731
        model, anatomy, style = text("model"), text("anatomy"), text("style")
        to_anatomy, to_style, sliders = text("to_anatomy"), text("to_style"), text("sliders")
        # Defaults: the default model's own (its info file).
        swap_at, seed = number("swap_at", defaults["swap_at"]), number("seed", 0)
        locality, steps = number("locality", defaults["locality"]), number("steps", defaults["steps"])
        anatomy_scale = number("anatomy_scale", defaults["anatomy_scale"])
        style_scale = number("style_scale", defaults["style_scale"])
        mode, frames = text("mode", "latent"), number("frames", FRAMES_DEFAULT)
        control_points, bend = number("control_points", CONTROL_POINTS_DEFAULT), number("bend", 0.0)
        settings_in, settings_out = text("settings"), gr.JSON(label="settings")
        generated, neutral, edited = image("image"), image("neutral"), image("edited")
        difference, figure = image("difference"), image("side_by_side")
        frames_out, gif, archive = gr.Gallery(label="frames", format="png"), gr.File(label="animation"), gr.File(label="zip")

        sampled = [anatomy, style]
        tail = [seed, steps, anatomy_scale, style_scale]
        edit_in = sampled + [to_anatomy, to_style, sliders, swap_at] + tail
        gr.Button(visible=False).click(api_generate, sampled + tail + [model], [generated, settings_out],
                                       api_name="generate")
        gr.Button(visible=False).click(api_edit, edit_in + [model, locality],
                                       [neutral, edited, difference, figure, settings_out], api_name="edit")
        gr.Button(visible=False).click(api_series, edit_in + [mode, frames, control_points, bend, model, locality],
                                       [frames_out, gif, settings_out], api_name="series")
        gr.Button(visible=False).click(api_export, [settings_in], [archive], api_name="export")
