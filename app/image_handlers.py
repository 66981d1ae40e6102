"""The upload panel's events: an image the user brings (PNG, JPEG or DICOM) read, checked and
held for the session at the model's size, its source prompts proposed by the attribute
classifier, and the masks painted on it. While an image is held, Edit and Make series start
from it (app/handlers.py); "Back to generated images" lets it go.

The uploaded file itself is removed when its request ends (app/uploads.py); only its pixels,
fitted to the model's size, and its sha256 stay, in the session's memory.
"""

from __future__ import annotations

from dataclasses import replace

import gradio as gr

from pipelines.core.errors import MedEditError
from pipelines.data.uploads import fit, read_image, read_mask
from pipelines.evaluation.describe import Description, describe
from pipelines.evaluation.domain import DomainVerdict

from app import jobs, state
from app.errors import user_errors
from app.held_image import HeldImage
from app.inputs import flag_field
from app.outputs import folders
from app.painting import describe_masks, painted_masks, read_layer
from app.shown_images import View
from app.uploads import received_path

HELD_NOTE = ("**Edits now start from your image** (inverted exactly, then edited). "
             "Describe it to fill the source prompts, or type them.")


@user_errors
def upload(file, model, allow_burned_in: bool = False, edit_anyway: bool = False) -> dict:
    """Read the uploaded file and hold it; show it in the painting editor. A DICOM whose pixels may
    show identifying text is refused unless the panel's "accept burned-in text" box is ticked. The
    model's domain check says at once whether it is like the training images (Edit refuses one of
    no modality the model knows unless "Edit anyway" is ticked)."""
    path = received_path(file, "image")
    if path is None:
        raise MedEditError("no file was uploaded")
    size = state.get_pipeline(model).model.info.image_size
    allow = bool(allow_burned_in)
    fitted = jobs.on_device("edit", lambda: fit(read_image(path, allow), size))  # decoding competes for the cores
    held = HeldImage(fitted.image, fitted.sha256, tuple(fitted.notes), burned_in=fitted.burned_in,
                     edit_anyway=bool(edit_anyway))
    verdict = jobs.on_device("edit", lambda: state.get_pipeline(model).domain_check.check(fitted.image))
    shown = folders.new().plain_png("upload", View.of(fitted.image).image(fitted.image))
    width, height = fitted.source_size
    done = "; ".join(fitted.notes) if fitted.notes else "used as it is"
    notes = (f"{domain_markdown(verdict)}\n\n{HELD_NOTE}\n\n- {fitted.kind}, {width}x{height}: {done}\n"
             f"- file sha256 `{fitted.sha256[:16]}…` (the only thing of the file an export records)")
    return {"held": held, "editor": {"background": shown, "layers": [], "composite": shown},
            "notes": notes, "findings": "", "masks": describe_masks(None, None)}


def domain_markdown(verdict: DomainVerdict) -> str:
    """The domain check's verdict, as the panel shows it: a refusal and a warning stand out."""
    if verdict.outcome == "in_domain":
        return f"Domain check: {verdict.message}."
    if verdict.refused:
        return (f"⛔ **Refused: {verdict.message}.** Edit will not run on it; tick \"Edit anyway\" to edit "
                "it all the same (research use: every output then says so).")
    return f"⚠️ **Warning: {verdict.message}.** Every output of its edits carries this warning."


def anyway(edit_anyway: bool, held: HeldImage | None) -> dict:
    """The "Edit anyway" box, ticked or not, applies to the held image at once."""
    return {"held": None if held is None else replace(held, edit_anyway=bool(edit_anyway))}


def forget() -> dict:
    """Stop editing the held image: edits start from generated images again."""
    return {"held": None, "editor": None, "notes": "", "findings": "", "masks": ""}


@user_errors
def painted(editor, held: HeldImage | None) -> dict:
    """The painted masks, fitted to the held image, replace its old ones. The editor's value comes
    as sent: its layers are uploads (the browser sends them, with the background and the composite,
    on every event), read from the request's own copies and removed with them (app/uploads.py)."""
    if held is None:
        return {"masks": ""}
    layers = [read_layer(received_path(layer, "painted layer")) for layer in (editor or {}).get("layers") or []]
    edit, keep = painted_masks(layers, held.pixels.shape[0])
    return {"held": replace(held, edit_mask=edit, keep_mask=keep), "masks": describe_masks(edit, keep)}


@user_errors
def describe_held(held: HeldImage | None, model=None) -> dict:
    """Fill the source prompts with what the classifier finds (the edit's prompts emptied: they
    keep the source's until typed), and show each finding with its confidence; for an image the
    model's domain check refuses, the refusal first and no confident modality."""
    if held is None:
        raise MedEditError("upload an image first (PNG, JPEG or DICOM)")
    description = jobs.on_device("edit", lambda: describe(held.pixels, None, state.get_pipeline(model).domain_check))
    return {"anatomy": description.anatomy, "style": description.style, "to_anatomy": "", "to_style": "",
            "findings": findings_markdown(description), "tab": gr.Tabs(selected=description.modality)}


def findings_markdown(d: Description) -> str:
    rows = "\n".join(f"| {f.name.replace('_', ' ')} | {'yes' if f.present else 'no'} | {f.confidence:.0%} |"
                     for f in d.findings)
    if d.refused:
        return (f"⛔ **{d.domain['message']}.** The classifier's reading means nothing for such an image; "
                f"the prompts below are the nearest modality's ({d.modality}), for an edit made anyway.\n\n"
                f"| finding | present | confidence |\n|---|---|---|\n{rows}")
    return (f"**What the classifier finds**: {d.modality} ({d.modality_confidence:.0%} sure)\n\n"
            f"| finding | present | confidence |\n|---|---|---|\n{rows}\n\n"
            "Only these are described (not the lesion's size or place, skin tone, view or exposure): "
            "check the prompts before editing.")


def held_from_files(image, edit_mask=None, keep_mask=None, allow_burned_in=None, edit_anyway=None) -> HeldImage:
    """An API request's image and masks (file payloads, as sent): read and checked at the image's
    own size (the pipeline fits them to the model's); a DICOM that may show identifying text only
    with allow_burned_in true; edit_anyway true edits one the domain check refuses."""
    allow = flag_field("allow_burned_in", allow_burned_in)
    anyway_flag = flag_field("edit_anyway", edit_anyway)
    path = received_path(image, "image")
    if path is None:
        raise MedEditError("image is required: a PNG, JPEG or DICOM file (gradio_client.handle_file)")
    decoded = jobs.on_device("edit", read_image, path, allow)
    # Masks decode on the device's turn too: one file is decoded at a time, whatever the load.
    masks = [None if (mask_path := received_path(value, name)) is None
             else jobs.on_device("edit", read_mask, mask_path, name)
             for value, name in ((edit_mask, "edit_mask"), (keep_mask, "keep_mask"))]
    held = HeldImage(decoded.pixels, decoded.sha256, tuple(decoded.notes), *masks, burned_in=decoded.burned_in,
                     edit_anyway=anyway_flag)
    held.regions  # noqa: B018 - checks the masks now: an empty one is refused before any work
    return held
