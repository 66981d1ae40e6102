"""The UI's events: named values in (what the controls hold), named results out.

app/ui.py lays the components out and maps these names to them; nothing here depends on the
order of components. Every value is checked by the same requests as the API's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import gradio as gr
from PIL import Image

from pipelines.core.errors import MedEditError
from pipelines.core.limits import MAX_PROMPT_CHARS
from pipelines.editing.vocabulary import learned_instead, learned_words, not_learned
from pipelines.evaluation.metrics import EDIT_FOOTPRINT, edit_footprint
from pipelines.export.images import difference_map

from app import inputs, jobs, state
from app.errors import user_errors
from app.held_image import HeldImage
from app.outputs import figure, folders, notes_markdown, report
from app.shown_images import View
from app.timing import Timing

SAMPLING_SETTINGS = ("swap_at", "locality", "anatomy_scale", "style_scale", "steps")  # a model's own defaults


def no_export() -> dict:
    """A new result: the old one's export is taken away."""
    return gr.update(value=None, visible=False)


@dataclass
class EditForm:
    """What the edit controls hold."""
    model: str
    anatomy: str
    style: str
    to_anatomy: str
    to_style: str
    swap_at: float
    seed: float
    steps: float
    anatomy_scale: float
    style_scale: float
    locality: float
    sliders: dict[str, float] = field(default_factory=dict)  # attribute name -> scale; 0 is off
    refresh: float = 0.0  # an uploaded image's edit only

    def request(self, series: dict | None = None, image: HeldImage | None = None) -> inputs.Request:
        """The edit (or series) of a generated image, or of `image` when one is held."""
        fields = dict(model=self.model, anatomy=self.anatomy, style=self.style, to_anatomy=self.to_anatomy,
                      to_style=self.to_style, sliders=moved_sliders(self.sliders), swap_at=self.swap_at,
                      seed=self.seed, steps=self.steps, anatomy_scale=self.anatomy_scale,
                      style_scale=self.style_scale, locality=self.locality, refresh=self.refresh)
        if series is None:
            request = inputs.edit_request(**fields)
        else:
            request = inputs.series_request(series["frames"], series["mode"], series["control_points"],
                                            series["bend"], **fields)
        request.image = image
        return request


def moved_sliders(values: dict) -> dict[str, float]:
    """The sliders away from 0, as numbers (the request checks their range)."""
    return {name: float(v) for name, v in values.items() if v is not None and float(v) != 0.0}


@user_errors
def edit(form: dict, session: dict | None, held: HeldImage | None = None, progress=None) -> dict:
    """Edit from the form (the held image when there is one); the result replaces the shown one,
    and the old one's export."""
    timing = Timing()  # from here: the note tells the whole request's time
    request = EditForm(**form).request(image=held)

    def shown(result) -> dict:
        settings = report(result, request.source, "edit")
        before, after = Image.fromarray(result.neutral), Image.fromarray(result.edited)
        view = View.of(before)
        big_before, big_after = view.image(before), view.image(after)
        changed = float(edit_footprint(result.neutral, result.edited).mean())
        response = folders.new()
        out = {"pair": (response.png(view.name("before"), big_before, settings),
                        response.png(view.name("after"), big_after, settings)),
               "figure": response.png(view.name("side_by_side"), figure(big_before, big_after, settings), settings),
               "difference": response.png(view.name("difference"), view.image(difference_map(before, after)),
                                          settings),
               "settings": settings, "archive": no_export(),
               "session": {**(session or {}), "edit": {"frames": [result.neutral, result.edited],
                                                       "settings": settings}}}
        changed_note = (f"{changed:.0%} of pixels changed visibly (by more than {round(EDIT_FOOTPRINT * 255)} "
                        "of 255 levels)")
        return {**out, "notes": notes_markdown(result, timing, view, changed_note, held.notes if held else ())}

    return jobs.run("edit", request, progress, shown, timing=timing)


@user_errors
def series(form: dict, series: dict, session: dict | None, held: HeldImage | None = None, progress=None) -> dict:
    """A series from the form (of the held image when there is one); it replaces the shown one,
    and the old one's export."""
    timing = Timing()  # from here: the note tells the whole request's time
    request = EditForm(**form).request(series, held)

    def shown(result) -> dict:
        settings = report(result, request.source, "series")
        response = folders.new()
        view = View.of(result.frames[0])
        big = [view.image(f) for f in result.frames]
        gallery = [(response.png(view.name(f"frame_{i:03d}"), f, settings), f"t={t:.2f}")
                   for i, (f, t) in enumerate(zip(big, result.times))]
        animation = response.gif("series-view", big, settings)
        return {"gallery": gallery, "animation": animation, "settings": settings,
                "notes": notes_markdown(result, timing, view, upload_notes=held.notes if held else ()),
                "archive": no_export(),
                "session": {**(session or {}), "series": {"frames": result.frames, "times": result.times,
                                                          "settings": settings}}}

    return jobs.run("series", request, progress, shown, timing=timing)


@user_errors
def export(kind: str, session: dict | None) -> dict:
    """The ZIP of the edit or series shown, offered for download. Its frames are already decoded, so
    the ZIP is written off the device, as every result's files are (app/jobs.py); the event's heavy
    lane (app/ui.py) bounds how many are written at once."""
    shown = (session or {}).get(kind)
    if not shown:
        raise MedEditError(f"nothing to export yet: make {'an edit' if kind == 'edit' else 'a series'} first")
    path = folders.new().zip(kind, shown["frames"], shown["settings"], shown.get("times"))
    return gr.update(value=path, visible=True)


def load_model(source) -> tuple[str, object]:
    """Load the picked model; the status line says what was loaded or why it could not be."""
    try:
        pipeline = state.get_pipeline(source)
    except MedEditError as error:
        return f"⚠️ **Model not loaded.** {error}", None
    info = pipeline.model.info
    return (f"Model **{info.name}** (`{pipeline.model.model_id}`, revision `{pipeline.model.revision}`), "
            f"{len(info.attributes)} attributes, {info.image_size} px."), info


def model_picked(model, slider_names: list[str], reset_settings: bool) -> dict:
    """The model's status, its sliders shown (others hidden) and, on a change of model, its own
    sampling defaults."""
    status, info = load_model(model)
    offered = {a["name"] for a in info.attributes} if info else set(slider_names)
    reset = info is not None and reset_settings

    def slider(name):  # shown with this model's own range
        if info is None or name not in offered:
            return gr.update(visible=name in offered)
        low, high = info.slider_range(name)
        return gr.update(visible=True, minimum=low, maximum=high)

    return {"status": status,
            "sliders": {name: slider(name) for name in slider_names},
            "settings": {key: info.defaults[key] if reset else gr.update() for key in SAMPLING_SETTINGS}}


def unlearned_words(model, anatomy, style, to_anatomy, to_style) -> dict:
    """Beside each pair of prompts: the words the model did not learn (nothing when every word is
    known, or when the model's vocabulary is not: a PixArt model, an adapter on the user's data)."""
    try:
        vocabulary = learned_words(state.get_pipeline(model).model.info)
    except MedEditError:
        vocabulary = None  # the model status says why
    return {"source": words_note(vocabulary, anatomy, style), "edit": words_note(vocabulary, to_anatomy, to_style)}


def words_note(vocabulary, *prompts) -> str:
    if vocabulary is None:
        return ""
    found = dict.fromkeys(word for prompt in prompts if isinstance(prompt, str)
                          for word in not_learned(prompt[:MAX_PROMPT_CHARS], vocabulary))
    if not found:
        return ""
    shown = [f"{word} (did you mean “{instead}”?)" if (instead := learned_instead(word, vocabulary)) else word
             for word in found]
    return "⚠️ not learned: " + ", ".join(shown)


def random_seed() -> int:
    return random.randint(0, 2**31 - 1)
