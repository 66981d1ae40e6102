"""The upload panel: bring your own image (PNG, JPEG or DICOM), paint where the edit may act and
what must stay, and let the classifier describe it. Folded away under the Edit button."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from pipelines.core.limits import REFRESH_RANGE

from app.painting import BRUSH_OPACITY, EDIT_COLOUR, KEEP_COLOUR


@dataclass
class ImagePanel:
    file: gr.File
    notes: gr.Markdown  # what was read and done to it
    editor: gr.ImageEditor  # the image, with the masks painted on it
    masks: gr.Markdown  # what the masks cover
    refresh: gr.Slider  # how much of the end of the run may redraw the image's fine detail
    allow_burned_in: gr.Checkbox  # accept a DICOM whose pixels may show identifying text
    edit_anyway: gr.Checkbox  # edit an image the domain check refuses (of no modality the model knows)
    describe: gr.Button
    forget: gr.Button
    findings: gr.Markdown  # what the classifier found, with its confidence


def image_panel() -> ImagePanel:
    with gr.Accordion("Edit your own image (PNG, JPEG, DICOM)", open=False, elem_id="own-image"):
        # Any file type: DICOM files often have no extension; the reader checks what it is.
        file = gr.File(label="Your image", file_count="single", type="filepath", height=110, elem_id="upload-file")
        allow_burned_in = gr.Checkbox(False, elem_id="allow-burned-in",
                                      label="Accept burned-in text (tick, then upload again)",
                                      info="A DICOM whose pixels may show a patient's name or other text "
                                           "(BurnedInAnnotation YES, a screen save, a scanned document, an "
                                           "ultrasound) is refused unless this is ticked; then every output "
                                           "says so.")
        edit_anyway = gr.Checkbox(False, elem_id="edit-anyway", label="Edit anyway",
                                  info="An image of no modality the model knows (a CT, an MR, a photograph, a "
                                       "document) is refused; tick this to edit it all the same, for research: "
                                       "every output then says so.")
        notes = gr.Markdown(elem_id="upload-notes")
        editor = gr.ImageEditor(
            label="Optional masks: green where it may change, red what must stay",
            type="numpy", image_mode="RGBA", format="png", sources=(), transforms=(), layers=False,
            brush=gr.Brush(colors=[(EDIT_COLOUR, BRUSH_OPACITY), (KEEP_COLOUR, BRUSH_OPACITY)],
                           color_mode="fixed", default_size=12),
            eraser=gr.Eraser(default_size=12), elem_id="upload-editor")
        masks = gr.Markdown(elem_id="upload-masks")
        refresh = gr.Slider(*REFRESH_RANGE, value=0.0, step=0.05, elem_id="refresh",
                            label="Redraw fine detail (when a removal leaves traces, e.g. 0.2)",
                            info="Technical name: refresh, the share of the last denoising steps that draw fresh "
                                 "noise instead of your image's own. 0 keeps every fine detail of your image; "
                                 "removing hair leaves faint strands unless some is redrawn.")
        with gr.Row():
            describe = gr.Button("Describe it (fill the source prompts)", elem_id="describe-button")
            forget = gr.Button("Back to generated images", elem_id="forget-upload")
        findings = gr.Markdown(elem_id="findings")
    return ImagePanel(file, notes, editor, masks, refresh, allow_burned_in, edit_anyway, describe, forget, findings)
