"""The MedEdit editing app: the layout (controls, results) and the events that join them.

Components are held by name (Controls, Results) and meet the handlers (app/handlers.py) by name
through app/wiring.by_name. The named API endpoints live in app/api.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from pipelines.core.limits import (BEND_RANGE, CONTROL_POINTS_DEFAULT, CONTROL_POINTS_RANGE, FRAMES_DEFAULT,
                                   FRAMES_RANGE, LOCALITY_RANGE, MAX_UPLOAD_BYTES, SCALE_RANGE, SEED_MAX, SERIES_MODES,
                                   SLIDER_RANGE, STEPS_RANGE, SWAP_RANGE)
from pipelines.data.attributes import modality_of

from app import handlers, serving, state
from app.api import add_api_endpoints
from app.examples import EXAMPLES, example_values
from app.uploads import releasing_uploads
from app.wiring import by_name, leaves, rows_by_name

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
PRIVATE = dict(api_visibility="private")


def readable(name: str) -> str:
    return name.replace("_", " ").capitalize()


@dataclass
class Controls:
    """What the user sets for an edit."""
    model: gr.Dropdown
    model_status: gr.Markdown
    anatomy: gr.Textbox
    style: gr.Textbox
    to_anatomy: gr.Textbox
    to_style: gr.Textbox
    slider_tabs: gr.Tabs
    sliders: dict[str, gr.Slider]
    swap_at: gr.Slider
    locality: gr.Slider
    anatomy_scale: gr.Slider
    style_scale: gr.Slider
    seed: gr.Number
    randomize: gr.Button
    steps: gr.Slider
    edit_button: gr.Button

    def form(self) -> dict:
        """The components behind handlers.EditForm, by its field names."""
        return {"model": self.model, "anatomy": self.anatomy, "style": self.style, "to_anatomy": self.to_anatomy,
                "to_style": self.to_style, "swap_at": self.swap_at, "seed": self.seed, "steps": self.steps,
                "anatomy_scale": self.anatomy_scale, "style_scale": self.style_scale, "locality": self.locality,
                "sliders": self.sliders}

    def sampling_settings(self) -> dict:
        return {key: getattr(self, key) for key in handlers.SAMPLING_SETTINGS}


@dataclass
class Results:
    """What an edit and a series show, and their exports."""
    examples_slot: gr.Column
    pair: gr.ImageSlider
    difference: gr.Image
    figure: gr.Image
    edit_notes: gr.Markdown
    edit_settings: gr.JSON
    export_edit: gr.Button
    edit_zip: gr.File
    mode: gr.Radio
    frames: gr.Slider
    control_points: gr.Slider
    bend: gr.Slider
    series_button: gr.Button
    gallery: gr.Gallery
    animation: gr.Image
    series_notes: gr.Markdown
    series_settings: gr.JSON
    export_series: gr.Button
    series_zip: gr.File

    def series_form(self) -> dict:
        return {"mode": self.mode, "frames": self.frames, "control_points": self.control_points, "bend": self.bend}


# ---------------------------------------------------------------- controls

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
                                    *SLIDER_RANGE, value=0, step=0.1, label=readable(a["name"]),
                                    info=f"“{a['phrase']}”: + adds, − removes")
    return tabs, sliders


def controls(choices: list[str], defaults: dict) -> Controls:
    first = EXAMPLES[0]
    model = gr.Dropdown(choices, value=choices[0], label="Model", elem_id="model",
                        info="offered by MEDEDIT_MODEL (comma-separated); 'embedded' ships in assets/")
    model_status = gr.Markdown("Loading the model…", elem_id="model-status")
    with gr.Group():
        anatomy = gr.Textbox(first.anatomy, label="Source: anatomy prompt", lines=2)
        style = gr.Textbox(first.style, label="Source: style prompt")
    with gr.Group():
        to_anatomy = gr.Textbox(first.to_anatomy, label="Edit to: anatomy prompt",
                                placeholder="empty: keep the source anatomy", lines=2)
        to_style = gr.Textbox(first.to_style, label="Edit to: style prompt", placeholder="empty: keep the source style")
    gr.Markdown("**Attribute sliders** (0 = off; applied on top of the edit prompts)")
    slider_tabs, sliders = slider_panel(state.all_attributes())
    swap_at = gr.Slider(*SWAP_RANGE, value=first.swap_at, step=0.05,
                        label="Edit strength: swap at (fraction of steps)", elem_id="swap-at",
                        info="the edit takes over after this fraction of the denoising "
                             "steps: earlier (smaller) = stronger edit, later = closer to the source")
    locality = gr.Slider(*LOCALITY_RANGE, value=defaults["locality"], step=0.05,
                         label="Keep the rest: edit only where it acts", elem_id="locality",
                         info="0 lets the whole image change; higher keeps the source "
                              "image outside a tighter region around the edit")
    with gr.Row():
        anatomy_scale = gr.Slider(*SCALE_RANGE, value=defaults["anatomy_scale"], step=0.5,
                                  label="Anatomy strength (guidance)")
        style_scale = gr.Slider(*SCALE_RANGE, value=defaults["style_scale"], step=0.5, label="Style strength (guidance)")
    with gr.Row(equal_height=True):
        seed = gr.Number(first.seed, label="Seed", precision=0, minimum=0, maximum=SEED_MAX, scale=3)
        randomize = gr.Button("Random seed", scale=1)
    with gr.Accordion("Advanced", open=False):
        steps = gr.Slider(*STEPS_RANGE, value=defaults["steps"], step=1, label="Denoising steps")
    edit_button = gr.Button("Edit", variant="primary")
    return Controls(model, model_status, anatomy, style, to_anatomy, to_style, slider_tabs, sliders, swap_at,
                    locality, anatomy_scale, style_scale, seed, randomize, steps, edit_button)


# ---------------------------------------------------------------- results

def settings_and_export(what: str, title: str) -> tuple[gr.JSON, gr.Button, gr.File]:
    """Under a result: the settings it was made with, and a button that exports it as a ZIP."""
    with gr.Accordion(title, open=False):
        settings = gr.JSON(label="Settings")
    with gr.Row():
        button = gr.Button(f"Export this {what} (ZIP)", elem_id=f"export-{what}")
        archive = gr.File(label="Export", interactive=False, elem_id=f"{what}-zip", height=90)
    return settings, button, archive


def results() -> Results:
    examples_slot = gr.Column()
    with gr.Tabs():
        with gr.Tab("Edit"):
            with gr.Row():
                pair = gr.ImageSlider(label="Before / after (drag the divider)", format="png", type="pil",
                                      interactive=False, elem_id="before-after", elem_classes="mededit-pixels")
                difference = gr.Image(label="Difference map (bright = changed)", format="png", interactive=False,
                                      elem_id="difference", elem_classes="mededit-pixels")
            figure = gr.Image(label="Side by side", show_label=False, format="png", interactive=False,
                              elem_id="side-by-side", elem_classes="mededit-pixels")
            edit_notes = gr.Markdown()
            edit_settings, export_edit, edit_zip = settings_and_export(
                "edit", "Settings used (reproduce with /export or the CLI)")
        with gr.Tab("Series"):
            gr.Markdown("A smooth Bezier series from the source to the edit above.")
            with gr.Row():
                mode = gr.Radio(list(SERIES_MODES), value=SERIES_MODES[0], label="Bezier mode",
                                info="latent: the paper's curve through swaps of rising strength; "
                                     "embedding: a curve between neutral and edited prompts")
                frames = gr.Slider(*FRAMES_RANGE, value=FRAMES_DEFAULT, step=1, label="Frames")
            with gr.Row():
                control_points = gr.Slider(*CONTROL_POINTS_RANGE, value=CONTROL_POINTS_DEFAULT, step=1,
                                           label="Control points (latent)")
                bend = gr.Slider(*BEND_RANGE, value=0, step=0.1, label="Bend (embedding)",
                                 info="-1: the edit arrives late, 1: early")
            series_button = gr.Button("Make series", variant="primary")
            gallery = gr.Gallery(label="Frames", format="png", columns=6, height="auto", elem_id="series-frames",
                                 elem_classes="mededit-pixels")
            # A file path is served as is, so the GIF keeps its frames and animates.
            animation = gr.Image(label="Animation", format="png", type="filepath", interactive=False,
                                 elem_id="series-animation")
            series_notes = gr.Markdown()
            series_settings, export_series, series_zip = settings_and_export("series", "Settings used")
    return Results(examples_slot, pair, difference, figure, edit_notes, edit_settings, export_edit, edit_zip, mode,
                   frames, control_points, bend, series_button, gallery, animation, series_notes, series_settings,
                   export_series, series_zip)


# ---------------------------------------------------------------- wiring

def wire(demo: gr.Blocks, c: Controls, r: Results, session: gr.State):
    def computing(handler, inputs: dict, outputs: dict, heavy: bool, **options) -> dict:
        """A computing event: its values as sent (handlers check them), its uploads released, its
        shared concurrency limit."""
        return by_name(releasing_uploads(demo, handler), inputs, outputs, preprocess=False,
                       **serving.event_options(heavy), **PRIVATE, **options)

    edit_outputs = {"pair": r.pair, "figure": r.figure, "difference": r.difference, "settings": r.edit_settings,
                    "notes": r.edit_notes, "archive": r.edit_zip, "session": session}
    edit_event = computing(handlers.edit, {"form": c.form(), "session": session}, edit_outputs, heavy=False)
    rerender = {**edit_event, "trigger_mode": "always_last", "show_progress": "minimal"}
    c.edit_button.click(**edit_event)
    for control in list(c.sliders.values()) + list(c.sampling_settings().values()):
        control.release(**rerender)
    for box in (c.anatomy, c.style, c.to_anatomy, c.to_style, c.seed):
        box.submit(**rerender)
    c.randomize.click(handlers.random_seed, None, c.seed, **PRIVATE).then(**rerender)

    series_outputs = {"gallery": r.gallery, "animation": r.animation, "settings": r.series_settings,
                      "notes": r.series_notes, "archive": r.series_zip, "session": session}
    series_inputs = {"form": c.form(), "series": r.series_form(), "session": session}
    r.series_button.click(**computing(handlers.series, series_inputs, series_outputs, heavy=True))
    for control in (r.frames, r.control_points, r.bend):
        control.release(**computing(handlers.series, series_inputs, series_outputs, heavy=True,
                                    trigger_mode="always_last", show_progress="minimal"))
    for kind, button, archive in (("edit", r.export_edit, r.edit_zip), ("series", r.export_series, r.series_zip)):
        button.click(lambda s, kind=kind: handlers.export(kind, s), session, archive,
                     **serving.event_options(heavy=True), **PRIVATE)

    slider_names = list(c.sliders)
    model_outputs = {"status": c.model_status, "sliders": c.sliders, "settings": c.sampling_settings()}
    picked = lambda reset: lambda model: handlers.model_picked(model, slider_names, reset)  # noqa: E731
    c.model.change(**by_name(picked(True), {"model": c.model}, model_outputs, **PRIVATE))
    demo.load(**by_name(picked(False), {"model": c.model}, model_outputs, **PRIVATE))

    # Ready edits: fill the inputs, then edit (results are cached by request in app/state).
    example_inputs = {key: c.form()[key] for key in ("anatomy", "style", "to_anatomy", "to_style", "swap_at", "seed",
                                                       "sliders")}
    with r.examples_slot:
        examples = gr.Examples(rows_by_name(example_inputs, example_values(slider_names)),
                               [component for _, component in leaves(example_inputs)],
                               label="Ready edits (click one)", example_labels=[x.label for x in EXAMPLES],
                               api_visibility="private")
    examples.load_input_event.then(**{**rerender, "show_progress": "full"})
    examples.load_input_event.then(  # show the sliders of the example's modality
        lambda *prompts: gr.Tabs(selected=modality_of(*prompts)), [c.anatomy, c.style, c.to_anatomy],
        c.slider_tabs, **PRIVATE)


def build_ui(limits: serving.ServerLimits | None = None) -> gr.Blocks:
    """The app; `limits`: the server's (default: from the environment, see app/serving.py)."""
    limits = serving.ServerLimits.from_env() if limits is None else limits
    serving.configure(limits)
    choices = state.model_choices()
    defaults = state.model_info(choices[0]).defaults
    # delete_cache: uploads that no request named (a request removes the ones it names).
    with gr.Blocks(title="MedEdit", delete_cache=(limits.upload_age, limits.upload_age)) as demo:
        session = gr.State({})
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                c = controls(choices, defaults)
            with gr.Column(scale=3):
                r = results()
        wire(demo, c, r, session)
        add_api_endpoints(demo, defaults)
    demo.queue(max_size=limits.queue_size, default_concurrency_limit=1)
    return demo


def launch_options() -> dict:
    """What launch() takes: the theme and css (Gradio 6 moved them there) and the upload limit."""
    return dict(theme=gr.themes.Soft(), css=CSS, max_file_size=MAX_UPLOAD_BYTES)
