"""What an edit and a series show: the before/after first (it fits the first screen beside the
prompts), then the notes, the export, and what is folded away below."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from pipelines.core.limits import (BEND_RANGE, CONTROL_POINTS_DEFAULT, CONTROL_POINTS_RANGE, FRAMES_DEFAULT,
                                   FRAMES_RANGE)

VIEW_HEIGHT = None  # the image sets it: square, as wide as its column
PIXELS = "mededit-pixels"  # CSS class: enlarged without smoothing
SERIES_MODES = [("Through rising edit strengths (latent)", "latent"), ("Between the prompts (embedding)", "embedding")]


@dataclass
class Results:
    tabs: gr.Tabs
    pair: gr.ImageSlider
    difference: gr.Image
    edit_notes: gr.Markdown
    export_edit: gr.Button
    edit_zip: gr.File
    figure: gr.Image
    edit_settings: gr.JSON
    mode: gr.Radio
    frames: gr.Slider
    control_points: gr.Slider
    bend: gr.Slider
    series_button: gr.Button
    gallery: gr.Gallery
    animation: gr.Image
    series_notes: gr.Markdown
    export_series: gr.Button
    series_zip: gr.File
    series_settings: gr.JSON

    def series_form(self) -> dict:
        return {"mode": self.mode, "frames": self.frames, "control_points": self.control_points, "bend": self.bend}


def export_row(what: str) -> tuple[gr.Button, gr.File]:
    """The export button, and the ZIP once made (hidden until then, and again when a new result
    replaces the one it holds)."""
    button = gr.Button(f"Export this {what} (ZIP)", elem_id=f"export-{what}")
    archive = gr.File(label="Export", interactive=False, elem_id=f"{what}-zip", visible=False)
    return button, archive


def edit_view():
    with gr.Row(equal_height=True):
        pair = gr.ImageSlider(label="Before / after: drag the divider", format="png", type="filepath",
                              interactive=False, height=VIEW_HEIGHT, elem_id="before-after", elem_classes=PIXELS)
        difference = gr.Image(label="What changed (bright = more)", format="png", type="filepath", interactive=False,
                              height=VIEW_HEIGHT, elem_id="difference", elem_classes=PIXELS)
    edit_notes = gr.Markdown(elem_id="edit-notes")
    export_edit, edit_zip = export_row("edit")
    with gr.Accordion("Side by side (one picture)", open=False):
        figure = gr.Image(show_label=False, format="png", type="filepath", interactive=False, elem_id="side-by-side",
                          elem_classes=PIXELS)
    with gr.Accordion("Settings used (reproduce with /export or the command line)", open=False):
        edit_settings = gr.JSON(label="Settings")
    return pair, difference, edit_notes, export_edit, edit_zip, figure, edit_settings


def series_view():
    gr.Markdown("A smooth series of frames from the source to the edit set on the left.")
    with gr.Row():
        mode = gr.Radio(SERIES_MODES, value="latent", label="Path",
                        info="Technical name: Bezier mode. Latent: a curve through edits swapped ever earlier; "
                             "embedding: a curve between the source and edit prompts.")
        frames = gr.Slider(*FRAMES_RANGE, value=FRAMES_DEFAULT, step=1, label="Frames")
    with gr.Row():
        control_points = gr.Slider(*CONTROL_POINTS_RANGE, value=CONTROL_POINTS_DEFAULT, step=1,
                                   label="Stops along the way (latent path)",
                                   info="Technical name: control points of the curve")
        bend = gr.Slider(*BEND_RANGE, value=0, step=0.1, label="When the edit arrives (embedding path)",
                         info="Technical name: bend. −1 late, +1 early.")
    series_button = gr.Button("Make series", variant="primary", elem_id="series-button")
    # The frames first, all of them in view under the button (eight to a row, app/ui.CSS); then the
    # animation. A file path is served as is, so the GIF keeps its frames and animates.
    gallery = gr.Gallery(label="Frames", format="png", columns=8, height="auto", elem_id="series-frames",
                         elem_classes=PIXELS)
    animation = gr.Image(label="Animation", format="png", type="filepath", interactive=False, height=VIEW_HEIGHT,
                         elem_id="series-animation")
    series_notes = gr.Markdown()
    export_series, series_zip = export_row("series")
    with gr.Accordion("Settings used", open=False):
        series_settings = gr.JSON(label="Settings")
    return (mode, frames, control_points, bend, series_button, gallery, animation, series_notes, export_series,
            series_zip, series_settings)


def results() -> Results:
    with gr.Tabs() as tabs:
        with gr.Tab("Edit", id="edit"):
            edit = edit_view()
        with gr.Tab("Series", id="series"):
            series = series_view()
    return Results(tabs, *edit, *series)
