"""The named endpoints /generate, /edit, /series and /export, and for an image the client brings
/describe_image, /edit_image and /series_image: simple inputs (text and numbers; sliders and
settings as JSON objects; files through gradio_client.handle_file), PNG files back. Their names and
parameter names are stable: clients call them through gradio_client.

The handlers receive what the client sent, unconverted (preprocess=False): a number where a
prompt belongs is refused by name instead of being turned into text.
"""

from __future__ import annotations

import gradio as gr
from PIL import Image

from pipelines.core.limits import CONTROL_POINTS_DEFAULT, FRAMES_DEFAULT
from pipelines.evaluation.describe import describe
from pipelines.evaluation.domain import load_domain_check
from pipelines.export.images import comparison, difference_map

from app import image_handlers, inputs, jobs, serving
from app.errors import user_errors
from app.outputs import figure, folders, report
from app.payloads import guard_payloads
from app.timing import Timing
from app.uploads import releasing_uploads


def timed(answer: tuple, timing: Timing) -> tuple:
    """The answer with the request's own timing added to its settings ("timing": seconds in all on
    the server, before the device, waiting for it and of that behind series and exports, computing,
    writing), but not to its files, which stay the same bits for the same request."""
    *files, settings = answer
    return (*files, {**settings, "timing": timing.record()})


@user_errors
def api_generate(anatomy, style, seed, steps, anatomy_scale, style_scale, model, progress=gr.Progress()):
    """One image from the source prompts. Returns (PNG, settings)."""
    timing = Timing()
    request = inputs.sampling_request(model, anatomy, style, seed, steps, anatomy_scale, style_scale)
    s, loaded = request.sampling, request.pipeline.model
    settings = {"model": request.source, "model_id": loaded.model_id, "model_revision": loaded.revision,
                "anatomy": s.anatomy, "style": s.style, "seed": s.seed, "steps": s.steps,
                "anatomy_scale": s.anatomy_scale, "style_scale": s.style_scale, "kind": "generate"}
    return timed(jobs.run("generate", request, progress,
                          lambda image: (folders.new().png("image", image, settings), settings), timing=timing),
                 timing)


@user_errors
def api_edit(anatomy, style, to_anatomy, to_style, sliders, swap_at, seed, steps, anatomy_scale,
             style_scale, model, locality=None, progress=gr.Progress()):
    """Neutral and edited image from one noise. Returns (neutral, edited, difference, side by side, settings)."""
    timing = Timing()
    request = inputs.edit_request(model, anatomy, style, to_anatomy, to_style, sliders, swap_at, seed, steps,
                                  anatomy_scale, style_scale, locality)

    def files(result):
        settings = {**report(result, request.source, "edit"), "notes": result.notes}
        before, after = Image.fromarray(result.neutral), Image.fromarray(result.edited)
        response = folders.new()
        return (response.png("neutral", before, settings, {"image": "neutral"}),
                response.png("edited", after, settings, {"image": "edited"}),
                response.png("difference", difference_map(before, after), settings, {"panel": "difference"}),
                response.png("side_by_side", comparison(before, after, None), settings, {"panel": "side_by_side"}),
                settings)

    return timed(jobs.run("edit", request, progress, files, timing=timing), timing)


@user_errors
def api_series(anatomy, style, to_anatomy, to_style, sliders, swap_at, seed, steps, anatomy_scale,
               style_scale, mode, frames, control_points, bend, model, locality=None,
               progress=gr.Progress()):
    """A Bezier series from neutral to edited. Returns (frames, GIF, settings)."""
    timing = Timing()
    request = inputs.series_request(frames, mode, control_points, bend, model=model, anatomy=anatomy,
                                    style=style, to_anatomy=to_anatomy, to_style=to_style, sliders=sliders,
                                    swap_at=swap_at, seed=seed, steps=steps, anatomy_scale=anatomy_scale,
                                    style_scale=style_scale, locality=locality)

    def files(result):
        settings = {**report(result, request.source, "series"), "notes": result.notes}
        response = folders.new()
        shown = [(response.png(f"frame_{i:03d}", f, settings, {"frame": i, "t": t}), f"t={t:.2f}")
                 for i, (f, t) in enumerate(zip(result.frames, result.times))]
        return shown, response.gif("series", result.frames, settings), settings

    return timed(jobs.run("series", request, progress, files, timing=timing), timing)


@user_errors
def api_export(settings, progress=gr.Progress()):
    """The export ZIP for the settings that /edit or /series returned (recomputed from the caches)."""
    request = inputs.settings_request(settings)
    kind = "edit" if request.series is None else "series"

    def files(result):
        frames = [result.neutral, result.edited] if kind == "edit" else result.frames
        return folders.new().zip(kind, frames, report(result, request.source, kind), getattr(result, "times", None))

    return jobs.run(kind, request, progress, files, exported=True)


@user_errors
def api_describe_image(image, allow_burned_in=None, model=None):
    """What the shipped attribute classifier finds in the image: the source prompts it proposes,
    and each finding with its confidence, with the model's domain check's verdict ("domain"; an
    image it refuses is read with modality confidence 0). Returns the description as JSON."""
    held = image_handlers.held_from_files(image, allow_burned_in=allow_burned_in)
    check = load_domain_check(model or None)
    return jobs.on_device("edit", describe, held.pixels, None, check).as_dict()


def image_request(image, edit_mask, keep_mask, allow_burned_in, anatomy, style, series_fields: dict | None,
                  edit_anyway=None, **fields) -> tuple:
    """The request for an uploaded image, its masks and the settings sent (prompts described from
    the image when both are empty), and its notes."""
    held = image_handlers.held_from_files(image, edit_mask, keep_mask, allow_burned_in, edit_anyway)
    notes = list(held.notes)
    if anatomy in (None, "") and style in (None, ""):
        check = load_domain_check(fields.get("model") or None)
        description = jobs.on_device("edit", describe, held.pixels, None, check)
        anatomy, style = description.anatomy, description.style
        notes.append(f"source prompts from the classifier ({description.summary()})")
    fields.update(anatomy=anatomy, style=style)
    if series_fields is None:
        request = inputs.edit_request(**fields)
    else:
        request = inputs.series_request(**series_fields, **fields)
    request.image = held
    return request, notes


@user_errors
def api_edit_image(image, anatomy, style, to_anatomy, to_style, sliders, swap_at, seed, steps, anatomy_scale,
                   style_scale, model, locality=None, edit_mask=None, keep_mask=None, refresh=None,
                   allow_burned_in=None, edit_anyway=None, progress=gr.Progress()):
    """Edit an uploaded image (PNG, JPEG or DICOM): inverted exactly, edited by the prompts and
    sliders, only inside edit_mask and never inside keep_mask (mask images, white or opaque =
    painted, of the image's size or the model's), the last `refresh` share of the steps (0..1,
    default 0) with fresh noise. Empty source prompts: described from the image. A DICOM whose
    pixels may show identifying text only with allow_burned_in true (then every output says so).
    The model's domain check judges the image first: unlike its training images, it is edited with
    a warning (settings "domain" and "notes", and every file's provenance); of no modality the model
    knows, it is refused unless edit_anyway is true (then every output says so).
    Returns (source, edited, difference, side by side, export ZIP, settings)."""
    timing = Timing()
    request, notes = image_request(image, edit_mask, keep_mask, allow_burned_in, anatomy, style, None,
                                   edit_anyway=edit_anyway, model=model,
                                   to_anatomy=to_anatomy, to_style=to_style, sliders=sliders, swap_at=swap_at,
                                   seed=seed, steps=steps, anatomy_scale=anatomy_scale, style_scale=style_scale,
                                   locality=locality, refresh=refresh)

    def files(result):
        settings = {**report(result, request.source, "edit"), "notes": notes + result.notes}
        before, after = Image.fromarray(result.neutral), Image.fromarray(result.edited)
        response = folders.new()
        return (response.png("source", before, settings, {"image": "upload"}),
                response.png("edited", after, settings, {"image": "edited"}),
                response.png("difference", difference_map(before, after), settings, {"panel": "difference"}),
                response.png("side_by_side", figure(before, after, settings), settings, {"panel": "side_by_side"}),
                response.zip("edit", [result.neutral, result.edited], settings),
                settings)

    # In the light lane, as its gradio event: its export ZIP is written off the device (app/jobs.py).
    return timed(jobs.run("edit", request, progress, files, exported=True, timing=timing, lane="light"), timing)


@user_errors
def api_series_image(image, anatomy, style, to_anatomy, to_style, sliders, swap_at, seed, steps, anatomy_scale,
                     style_scale, mode, frames, control_points, bend, model, locality=None, edit_mask=None,
                     keep_mask=None, refresh=None, allow_burned_in=None, edit_anyway=None, progress=gr.Progress()):
    """A series from an uploaded image to its edit (as /edit_image takes it). Returns (frames, GIF,
    export ZIP, settings)."""
    timing = Timing()
    series_fields = dict(frames=frames, mode=mode, control_points=control_points, bend=bend)
    request, notes = image_request(image, edit_mask, keep_mask, allow_burned_in, anatomy, style, series_fields,
                                   edit_anyway=edit_anyway, model=model,
                                   to_anatomy=to_anatomy, to_style=to_style, sliders=sliders, swap_at=swap_at,
                                   seed=seed, steps=steps, anatomy_scale=anatomy_scale, style_scale=style_scale,
                                   locality=locality, refresh=refresh)

    def files(result):
        settings = {**report(result, request.source, "series"), "notes": notes + result.notes}
        response = folders.new()
        shown = [(response.png(f"frame_{i:03d}", f, settings, {"frame": i, "t": t}), f"t={t:.2f}")
                 for i, (f, t) in enumerate(zip(result.frames, result.times))]
        return (shown, response.gif("series", result.frames, settings),
                response.zip("series", result.frames, settings, result.times), settings)

    return timed(jobs.run("series", request, progress, files, exported=True, timing=timing), timing)


def add_api_endpoints(demo: gr.Blocks, defaults: dict):
    """The endpoints on hidden components: never clicked, only called by name. The values gradio
    checks before a handler runs get messages of their own (app/payloads.py)."""
    guard_payloads(demo)
    with gr.Column(visible=False):
        text = lambda label, value="": gr.Textbox(value, label=label)  # noqa: E731
        number = lambda label, value: gr.Number(value, label=label)  # noqa: E731  # no bounds: the handlers check
        image = lambda label: gr.Image(label=label, format="png", type="filepath")  # noqa: E731
        model, anatomy, style = text("model"), text("anatomy"), text("style")
        to_anatomy, to_style, sliders = text("to_anatomy"), text("to_style"), text("sliders")
        # Defaults: the default model's own (its info file).
        swap_at, seed = number("swap_at", defaults["swap_at"]), number("seed", 0)
        locality, steps = number("locality", defaults["locality"]), number("steps", defaults["steps"])
        refresh = number("refresh", 0.0)
        allow_burned_in = gr.Checkbox(False, label="allow_burned_in")  # a DICOM that may show identifying text
        anatomy_scale = number("anatomy_scale", defaults["anatomy_scale"])
        style_scale = number("style_scale", defaults["style_scale"])
        mode, frames = text("mode", "latent"), number("frames", FRAMES_DEFAULT)
        control_points, bend = number("control_points", CONTROL_POINTS_DEFAULT), number("bend", 0.0)
        settings_in, settings_out = text("settings"), gr.JSON(label="settings")
        generated, neutral, edited = image("image"), image("neutral"), image("edited")
        difference, figure = image("difference"), image("side_by_side")
        frames_out, gif = gr.Gallery(label="frames", format="png"), gr.File(label="animation")
        archive = gr.File(label="zip")
        upload = lambda label: gr.File(label=label, type="filepath")  # noqa: E731
        image_in, edit_mask, keep_mask = upload("image"), upload("edit_mask"), upload("keep_mask")
        source_out, description = image("source"), gr.JSON(label="description")

        def endpoint(fn, inputs_, outputs, name, heavy):
            gr.Button(visible=False).click(releasing_uploads(demo, fn), inputs_, outputs, api_name=name,
                                           preprocess=False, **serving.event_options(heavy))

        sampled, tail = [anatomy, style], [seed, steps, anatomy_scale, style_scale]
        edit_in = sampled + [to_anatomy, to_style, sliders, swap_at] + tail
        endpoint(api_generate, sampled + tail + [model], [generated, settings_out], "generate", heavy=False)
        endpoint(api_edit, edit_in + [model, locality], [neutral, edited, difference, figure, settings_out], "edit",
                 heavy=False)
        endpoint(api_series, edit_in + [mode, frames, control_points, bend, model, locality],
                 [frames_out, gif, settings_out], "series", heavy=True)
        endpoint(api_export, [settings_in], [archive], "export", heavy=True)
        edit_anyway = gr.Checkbox(False, label="edit_anyway")  # an image the domain check refuses
        # What only an uploaded image's edit takes.
        image_only = [edit_mask, keep_mask, refresh, allow_burned_in, edit_anyway]
        endpoint(api_describe_image, [image_in, allow_burned_in, model], [description], "describe_image",
                 heavy=False)
        endpoint(api_edit_image, [image_in] + edit_in + [model, locality] + image_only,
                 [source_out, edited, difference, figure, archive, settings_out], "edit_image", heavy=False)
        endpoint(api_series_image,
                 [image_in] + edit_in + [mode, frames, control_points, bend, model, locality] + image_only,
                 [frames_out, gif, archive, settings_out], "series_image", heavy=True)
