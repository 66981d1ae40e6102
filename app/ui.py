"""The MedEdit editing app: layout and event wiring (the work happens in app/handlers.py).

Two kinds of events: the UI's own (private, many components, per-session gr.State for export) and
the named API endpoints /generate, /edit, /series, /export with simple inputs (strings and
numbers; sliders as one JSON object string), wired to hidden components so that gradio_client
gets PNG files back.
"""

import gradio as gr

from app import handlers
from app.examples import EXAMPLES, example_rows
from pipelines.data.attributes import modality_of
from pipelines.core.limits import SEED_MAX

TITLE = "MedEdit: controllable editing of synthetic medical images"
INTRO = """Edit a **synthetic** dermoscopy image or chest X-ray along two separate axes: **anatomy**
(lesion, effusion, heart size) and **acquisition style** (hair, ruler, ink; devices, exposure).
Describe the source image, say what to change (new prompts and/or attribute sliders), and compare
before and after. Every image here is *synthetic, not a patient*, and not for clinical use."""
MODALITY_NAMES = {"dermoscopy": "Dermoscopy", "cxr": "Chest X-ray"}
CHANNEL_NAMES = {"anatomy": "Anatomy & pathology", "style": "Acquisition style"}
CSS = """
.mededit-pixels img { image-rendering: pixelated; }
"""


def readable(name: str) -> str:
    return name.replace("_", " ").capitalize()


def all_attributes() -> list[dict]:
    """The attributes of every offered model, first occurrence wins (one slider per name)."""
    seen = {}
    for source in handlers.model_choices():
        for attribute in handlers.model_info(source).attributes:
            seen.setdefault(attribute["name"], attribute)
    return list(seen.values())


def slider_panel(attributes: list[dict]) -> tuple[gr.Tabs, dict[str, gr.Slider]]:
    """Attribute sliders grouped by modality (tabs) and channel (columns)."""
    sliders = {}
    modalities = list(dict.fromkeys(a["modality"] for a in attributes))
    with gr.Tabs() as tabs:
        for modality in modalities:
            with gr.Tab(MODALITY_NAMES.get(modality, modality), id=modality):
                with gr.Row():
                    for channel in ("anatomy", "style"):
                        group = [a for a in attributes if a["modality"] == modality and a["channel"] == channel]
                        if not group:
                            continue
                        with gr.Column(min_width=200):
                            gr.Markdown(f"**{CHANNEL_NAMES[channel]}**")
                            for a in group:
                                sliders[a["name"]] = gr.Slider(
                                    -3, 3, value=0, step=0.1, label=readable(a["name"]),
                                    info=f"“{a['phrase']}”: + adds, − removes")
    return tabs, sliders


def settings_and_export(what: str, title: str) -> tuple[gr.JSON, gr.Button, gr.File]:
    """Under a result: the settings it was made with, and a button that exports it as a ZIP."""
    with gr.Accordion(title, open=False):
        settings = gr.JSON(label="Settings")
    with gr.Row():
        button = gr.Button(f"Export this {what} (ZIP)", elem_id=f"export-{what}")
        archive = gr.File(label="Export", interactive=False, elem_id=f"{what}-zip", height=90)
    return settings, button, archive


def build_ui() -> gr.Blocks:
    choices = handlers.model_choices()
    defaults = handlers.model_info(choices[0]).defaults
    first = EXAMPLES[0]
    with gr.Blocks(title="MedEdit", delete_cache=(3600, 3600)) as demo:
        state = gr.State({})
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Row(equal_height=False):
            # ------------------------------------------------------------ controls
            with gr.Column(scale=2):
                model = gr.Dropdown(choices, value=choices[0], label="Model", elem_id="model",
                                    info="offered by MEDEDIT_MODEL (comma-separated); 'embedded' ships in assets/")
                model_status = gr.Markdown("Loading the model…", elem_id="model-status")
                with gr.Group():
                    anatomy = gr.Textbox(first.anatomy, label="Source: anatomy prompt", lines=2)
                    style = gr.Textbox(first.style, label="Source: style prompt")
                with gr.Group():
                    to_anatomy = gr.Textbox(first.to_anatomy, label="Edit to: anatomy prompt",
                                            placeholder="empty: keep the source anatomy", lines=2)
                    to_style = gr.Textbox(first.to_style, label="Edit to: style prompt",
                                          placeholder="empty: keep the source style")
                gr.Markdown("**Attribute sliders** (0 = off; applied on top of the edit prompts)")
                slider_tabs, sliders = slider_panel(all_attributes())
                swap_at = gr.Slider(0, 1, value=first.swap_at, step=0.05,
                                    label="Edit strength: swap at (fraction of steps)", elem_id="swap-at",
                                    info="the edit takes over after this fraction of the denoising "
                                         "steps: earlier (smaller) = stronger edit, later = closer to the source")
                locality = gr.Slider(0, 0.9, value=defaults["locality"], step=0.05,
                                     label="Keep the rest: edit only where it acts", elem_id="locality",
                                     info="0 lets the whole image change; higher keeps the source "
                                          "image outside a tighter region around the edit")
                with gr.Row():
                    anatomy_scale = gr.Slider(0, 15, value=defaults["anatomy_scale"], step=0.5,
                                              label="Anatomy strength (guidance)")
                    style_scale = gr.Slider(0, 15, value=defaults["style_scale"], step=0.5,
                                            label="Style strength (guidance)")
                with gr.Row(equal_height=True):
                    seed = gr.Number(first.seed, label="Seed", precision=0, minimum=0,
                                     maximum=SEED_MAX, scale=3)
                    randomize = gr.Button("Random seed", scale=1)
                with gr.Accordion("Advanced", open=False):
                    steps = gr.Slider(1, 50, value=defaults["steps"], step=1, label="Denoising steps")
                edit_button = gr.Button("Edit", variant="primary")
            # ------------------------------------------------------------ results
            with gr.Column(scale=3):
                examples_slot = gr.Column()
                with gr.Tabs():
                    with gr.Tab("Edit"):
                        with gr.Row():
                            pair = gr.ImageSlider(label="Before / after (drag the divider)", format="png",
                                                  type="pil", interactive=False, elem_id="before-after",
                                                  elem_classes="mededit-pixels")
                            difference = gr.Image(label="Difference map (bright = changed)", format="png",
                                                  interactive=False, elem_id="difference",
                                                  elem_classes="mededit-pixels")
                        figure = gr.Image(label="Side by side", show_label=False, format="png",
                                          interactive=False, elem_id="side-by-side", elem_classes="mededit-pixels")
                        edit_notes = gr.Markdown()
                        edit_settings, export_edit, edit_zip = settings_and_export(
                            "edit", "Settings used (reproduce with /export or the CLI)")
                    with gr.Tab("Series"):
                        gr.Markdown("A smooth Bezier series from the source to the edit above.")
                        with gr.Row():
                            mode = gr.Radio(["latent", "embedding"], value="latent", label="Bezier mode",
                                            info="latent: the paper's curve through swaps of rising strength; "
                                                 "embedding: a curve between neutral and edited prompts")
                            frames = gr.Slider(2, 32, value=12, step=1, label="Frames")
                        with gr.Row():
                            control_points = gr.Slider(2, 10, value=6, step=1, label="Control points (latent)")
                            bend = gr.Slider(-1, 1, value=0, step=0.1, label="Bend (embedding)",
                                             info="-1: the edit arrives late, 1: early")
                        series_button = gr.Button("Make series", variant="primary")
                        gallery = gr.Gallery(label="Frames", format="png", columns=6, height="auto",
                                             elem_id="series-frames", elem_classes="mededit-pixels")
                        # A file path is served as is, so the GIF keeps its frames and animates.
                        animation = gr.Image(label="Animation", format="png", type="filepath",
                                             interactive=False, elem_id="series-animation")
                        series_notes = gr.Markdown()
                        series_settings, export_series, series_zip = settings_and_export("series", "Settings used")

        names = list(sliders)
        slider_inputs = [sliders[n] for n in names]
        common = [model, anatomy, style, to_anatomy, to_style, swap_at, seed, steps, anatomy_scale, style_scale,
                  locality]

        def on_edit(*args, progress=gr.Progress()):
            count = len(common) + 1  # the fixed inputs and the session state; then the sliders
            return handlers.ui_edit(*args[:count], names, args[count:], progress)

        def on_series(*args, progress=gr.Progress()):
            count = len(common) + 5
            fixed, values = args[:count], args[count:]
            return handlers.ui_series(*fixed, names, values, progress)

        edit_inputs = common + [state] + slider_inputs
        edit_outputs = [pair, figure, difference, edit_settings, edit_notes, state]
        series_inputs = common + [mode, frames, control_points, bend, state] + slider_inputs
        series_outputs = [gallery, animation, series_settings, series_notes, state]
        private = dict(api_visibility="private")
        rerender = dict(fn=on_edit, inputs=edit_inputs, outputs=edit_outputs, trigger_mode="always_last",
                        show_progress="minimal", **private)

        edit_button.click(on_edit, edit_inputs, edit_outputs, **private)
        for control in slider_inputs + [swap_at, locality, anatomy_scale, style_scale, steps]:
            control.release(**rerender)
        for box in (anatomy, style, to_anatomy, to_style, seed):
            box.submit(**rerender)
        randomize.click(handlers.random_seed, None, seed, **private).then(**rerender)
        series_button.click(on_series, series_inputs, series_outputs, **private)
        for control in (frames, control_points, bend):
            control.release(on_series, series_inputs, series_outputs, trigger_mode="always_last",
                            show_progress="minimal", **private)
        export_edit.click(lambda s: handlers.ui_export("edit", s), state, edit_zip, **private)
        export_series.click(lambda s: handlers.ui_export("series", s), state, series_zip, **private)

        settings = {"swap_at": swap_at, "locality": locality, "anatomy_scale": anatomy_scale,
                    "style_scale": style_scale, "steps": steps}

        def on_model(source, reset_settings=False):
            """Show the model's sliders; on a change of model also its own sampling defaults."""
            status, info = handlers.ui_load_model(source)
            offered = {a["name"] for a in info.attributes} if info else set(names)
            shown = [gr.update(visible=n in offered) for n in names]
            reset = info is not None and reset_settings
            return [status] + shown + [info.defaults[key] if reset else gr.update() for key in settings]

        model_outputs = [model_status] + slider_inputs + list(settings.values())
        model.change(lambda source: on_model(source, reset_settings=True), model, model_outputs, **private)
        demo.load(on_model, model, model_outputs, **private)

        # Ready edits: fill the inputs, then edit (results are cached by request in handlers).
        with examples_slot:
            examples = gr.Examples(example_rows(names), [anatomy, style, to_anatomy, to_style, swap_at, seed]
                                   + slider_inputs, label="Ready edits (click one)",
                                   example_labels=[x.label for x in EXAMPLES], api_visibility="private")
        examples.load_input_event.then(**{**rerender, "show_progress": "full"})
        examples.load_input_event.then(  # show the sliders of the example's modality
            lambda *prompts: gr.Tabs(selected=modality_of(*prompts)), [anatomy, style, to_anatomy],
            slider_tabs, **private)

        api_endpoints(defaults)
    demo.queue(default_concurrency_limit=2)
    return demo


def api_endpoints(defaults: dict):
    """Named endpoints with simple inputs, on hidden components (see the README for a client example)."""
    with gr.Column(visible=False):
        text = lambda label, value="": gr.Textbox(value, label=label)  # noqa: E731
        number = lambda label, value: gr.Number(value, label=label)  # noqa: E731  # no bounds: handlers check
        model = text("model")
        anatomy, style = text("anatomy"), text("style")
        to_anatomy, to_style, sliders = text("to_anatomy"), text("to_style"), text("sliders")
        # Defaults: the default model's own (the model's info file); handlers check every value.
        swap_at, seed = number("swap_at", defaults["swap_at"]), number("seed", 0)
        locality = number("locality", defaults["locality"])
        steps = number("steps", defaults["steps"])
        anatomy_scale = number("anatomy_scale", defaults["anatomy_scale"])
        style_scale = number("style_scale", defaults["style_scale"])
        mode, frames = text("mode", "latent"), number("frames", 16)
        control_points, bend = number("control_points", 6), number("bend", 0.0)
        settings_in = text("settings")
        image = lambda label: gr.Image(label=label, format="png", type="pil")  # noqa: E731
        settings_out = gr.JSON(label="settings")
        neutral, edited = image("neutral"), image("edited")
        difference, figure = image("difference"), image("side_by_side")
        frames_out = gr.Gallery(label="frames", format="png")
        gif, archive = gr.File(label="animation"), gr.File(label="zip")

        generated = image("image")
        sampling = [anatomy, style]
        tail = [seed, steps, anatomy_scale, style_scale]
        edit_in = sampling + [to_anatomy, to_style, sliders, swap_at] + tail
        # Hidden buttons carry the endpoints: they are never clicked, only called by name.
        gr.Button(visible=False).click(handlers.api_generate, sampling + tail + [model],
                                       [generated, settings_out], api_name="generate")
        gr.Button(visible=False).click(handlers.api_edit, edit_in + [model, locality],
                                       [neutral, edited, difference, figure, settings_out], api_name="edit")
        gr.Button(visible=False).click(handlers.api_series,
                                       edit_in + [mode, frames, control_points, bend, model, locality],
                                       [frames_out, gif, settings_out], api_name="series")
        gr.Button(visible=False).click(handlers.api_export, [settings_in], [archive], api_name="export")


def launch_options() -> dict:
    """Gradio 6 takes theme and css at launch()."""
    return dict(theme=gr.themes.Soft(), css=CSS)
