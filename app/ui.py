"""The MedEdit editing app: the page (controls beside results, app/controls.py and
app/displays.py) and the events that join them to the handlers (app/handlers.py), by name
through app/wiring.by_name. The named API endpoints live in app/api.py.
"""

from __future__ import annotations

import gradio as gr

from pipelines.core.limits import MAX_UPLOAD_BYTES
from pipelines.data.attributes import modality_of

from app import handlers, image_handlers, server_folders, serving, state
from app.api import add_api_endpoints
from app.controls import Controls, controls
from app.displays import Results, results
from app.examples import EXAMPLES, example_values
from app.uploads import releasing_uploads
from app.wiring import by_name, leaves, rows_by_name

TITLE = "MedEdit: edit synthetic medical images"
INTRO = ("Describe a **synthetic** dermoscopy image or chest X-ray, say what to change in its **anatomy** "
         "or its **acquisition style**, and compare before and after, or edit your own image (under Edit). "
         "Not for clinical use.")
CSS = """
.mededit-pixels img[src*=".blocks."] { image-rendering: pixelated; }  /* app/shown_images.py */
.mededit-words, .mededit-words * { color: #b45309 !important; font-size: 0.95em; }
#mededit-header h2 { margin: 0; }
/* gradio's overflow: hidden makes the container a scroller of its own, and a phone's sticky Edit
   button inert; clip cuts the same without it (outside @media: gradio scopes rules in one). */
.gradio-container { overflow: clip !important; }
/* A series' frames fit their column, eight to a row (gradio's own minimum of 100 px a frame
   pushed the last ones out of a laptop's column), four on a phone. */
#series-frames .grid-container { grid-template-columns: repeat(8, minmax(0, 1fr)); grid-auto-rows: auto; }
#series-frames .fixed-height { min-height: 0; }  /* as tall as its frames (up to 55vh), not 450 px */
#series-frames .grid-wrap { padding-top: 40px; }  /* below the "Frames" label, which covered the first */
@media (max-width: 640px) {
  /* A phone: the header stacks instead of squeezing into two narrow columns, and the Edit button
     stays on screen while the prompts and the upload panel scroll past. */
  #mededit-header { flex-direction: column; }
  #edit-button { position: sticky; top: 8px; bottom: 8px; z-index: 10; }
  #series-frames .grid-container { grid-template-columns: repeat(4, minmax(0, 1fr)); }
  #series-frames .caption-label { font-size: 11px; padding: 1px 4px; }  /* "t=0.07" whole on a small frame */
}
"""
PRIVATE = dict(api_visibility="private")


def into_view(elem_id: str) -> dict:
    """A client-side event that scrolls to an element not wholly on screen: on a phone the result
    sits below the controls. gradio's scroll_to_output scrolls even when it is in view, which
    would move a laptop's first screen. Judged at least as tall as wide: an empty image is
    shorter than the square result that will fill it."""
    js = (f"() => {{ const e = document.getElementById('{elem_id}'); if (!e) return;"
          " const b = e.getBoundingClientRect();"
          " if (b.top < 0 || b.top + Math.max(b.height, b.width) > window.innerHeight)"
          " e.scrollIntoView({block: 'start'}); }")
    return dict(fn=None, inputs=None, outputs=None, js=js, queue=False, **PRIVATE)


class Wiring:
    """The page's events: every computing one takes its values as sent (the handlers check them),
    releases the uploads they name, and counts against its shared concurrency limit."""

    def __init__(self, demo: gr.Blocks, c: Controls, r: Results, session: gr.State, held: gr.State):
        self.demo, self.c, self.r, self.session, self.held = demo, c, r, session, held

    def computing(self, handler, inputs: dict, outputs: dict, heavy: bool, **options) -> dict:
        return by_name(releasing_uploads(self.demo, handler), inputs, outputs, preprocess=False,
                       **serving.event_options(heavy), **PRIVATE, **options)

    def edit(self) -> dict:
        """Edit on the button, on a slider's release, on Enter in a prompt; returns the re-edit event."""
        c, r = self.c, self.r
        outputs = {"pair": r.pair, "figure": r.figure, "difference": r.difference, "settings": r.edit_settings,
                   "notes": r.edit_notes, "archive": r.edit_zip, "session": self.session}
        inputs = {"form": c.form(), "session": self.session, "held": self.held}
        event = self.computing(handlers.edit, inputs, outputs, heavy=False)
        rerender = {**event, "trigger_mode": "always_last", "show_progress": "minimal"}
        c.edit_button.click(**self.painting()).success(**event, show_progress_on=[r.pair, r.difference])
        c.edit_button.click(**into_view("before-after"))
        for control in list(c.sliders.values()) + list(c.sampling_settings().values()) + [c.image.refresh]:
            control.release(**self.painting(trigger_mode="always_last")).success(**rerender)
        for box in (*c.prompts().values(), c.seed):
            box.submit(**self.painting(trigger_mode="always_last")).success(**rerender)
        c.randomize.click(handlers.random_seed, None, c.seed, **PRIVATE).then(**self.painting()).success(**rerender)
        return rerender

    def painting(self, **options) -> dict:
        """The masks read from the editor into the held image, first thing on every edit and
        series: the editor's own change events can lag the brush by seconds, and an edit must keep
        what was painted when it was asked for. Light work, so no limit on how many run at once."""
        p = self.c.image
        return by_name(releasing_uploads(self.demo, image_handlers.painted), {"editor": p.editor, "held": self.held},
                       {"held": self.held, "masks": p.masks}, preprocess=False, show_progress="hidden",
                       concurrency_limit=None, **PRIVATE, **options)

    def series(self):
        c, r = self.c, self.r
        outputs = {"gallery": r.gallery, "animation": r.animation, "settings": r.series_settings,
                   "notes": r.series_notes, "archive": r.series_zip, "session": self.session}
        inputs = {"form": c.form(), "series": r.series_form(), "session": self.session, "held": self.held}
        r.series_button.click(**self.painting()).success(**self.computing(handlers.series, inputs, outputs, heavy=True))
        r.series_button.click(**into_view("series-frames"))
        for control in (r.frames, r.control_points, r.bend):
            control.release(**self.painting(trigger_mode="always_last")).success(
                **self.computing(handlers.series, inputs, outputs, heavy=True, show_progress="minimal"))
        for kind, button, archive in (("edit", r.export_edit, r.edit_zip), ("series", r.export_series, r.series_zip)):
            button.click(lambda s, kind=kind: handlers.export(kind, s), self.session, archive,
                         **serving.event_options(heavy=True), **PRIVATE)

    def image_outputs(self) -> dict:
        p = self.c.image
        return {"held": self.held, "editor": p.editor, "notes": p.notes, "findings": p.findings, "masks": p.masks}

    def own_image(self, rerender: dict):
        """Upload, paint, describe, let go. Painting is read as the editor sends it (its layers are
        uploads, read from the event's own copies); a new description re-renders the edit."""
        c, p, panel = self.c, self.c.image, self.image_outputs()
        p.file.upload(**self.computing(image_handlers.upload, {"file": p.file, "model": c.model,
                                                               "allow_burned_in": p.allow_burned_in,
                                                               "edit_anyway": p.edit_anyway}, panel, heavy=False))
        p.edit_anyway.change(**by_name(image_handlers.anyway, {"edit_anyway": p.edit_anyway, "held": self.held},
                                       {"held": self.held}, **PRIVATE))
        p.file.clear(**by_name(image_handlers.forget, {}, panel, **PRIVATE))
        p.forget.click(**by_name(image_handlers.forget, {}, panel, **PRIVATE)).then(lambda: None, None, p.file,
                                                                                     **PRIVATE)
        p.editor.change(**self.painting(trigger_mode="always_last"))
        described = {**c.prompts(), "findings": p.findings, "tab": c.slider_tabs}
        describing = {"held": self.held, "model": c.model}
        p.describe.click(**self.computing(image_handlers.describe_held, describing, described,
                                          heavy=False)).success(**self.painting()).success(**rerender)
        p.describe.click(**into_view("before-after"))

    def model(self, status: gr.Markdown):
        """The model's status and sliders on load; its own sampling defaults when it is changed."""
        c, names = self.c, list(self.c.sliders)
        outputs = {"status": status, "sliders": c.sliders, "settings": c.sampling_settings()}
        picked = lambda reset: lambda model: handlers.model_picked(model, names, reset)  # noqa: E731
        c.model.change(**by_name(picked(True), {"model": c.model}, outputs, **PRIVATE))
        self.demo.load(**by_name(picked(False), {"model": c.model}, outputs, **PRIVATE))

    def words(self):
        """Beside the prompts, as they change: the words the model did not learn."""
        c = self.c
        check = by_name(handlers.unlearned_words, {"model": c.model, **c.prompts()},
                        {"source": c.source_words, "edit": c.edit_words}, queue=False, show_progress="hidden",
                        **PRIVATE)
        for trigger in (*c.prompts().values(), c.model):
            trigger.change(**check, trigger_mode="always_last")
        self.demo.load(**check)

    def examples(self, slot: gr.Column, rerender: dict):
        """Ready edits: fill the inputs, then edit (results are cached by request in app/state)."""
        c = self.c
        inputs = {**c.prompts(), "swap_at": c.swap_at, "seed": c.seed, "sliders": c.sliders}
        with slot:
            examples = gr.Examples(rows_by_name(inputs, example_values(list(c.sliders))),
                                   [component for _, component in leaves(inputs)], label="Ready edits (click one)",
                                   example_labels=[x.label for x in EXAMPLES], api_visibility="private")
        # A ready edit starts from a generated image: a held upload is let go first.
        examples.load_input_event.then(**by_name(image_handlers.forget, {}, self.image_outputs(), **PRIVATE)).then(
            **{**rerender, "show_progress": "full"})
        examples.load_input_event.then(  # show the sliders of the example's modality
            lambda *prompts: gr.Tabs(selected=modality_of(*prompts)), [c.anatomy, c.style, c.to_anatomy],
            c.slider_tabs, **PRIVATE)
        examples.load_input_event.then(**into_view("before-after"))  # the examples lie below the result


def build_ui(limits: serving.ServerLimits | None = None) -> gr.Blocks:
    """The app; `limits`: the server's (default: from the environment, see app/serving.py)."""
    limits = serving.ServerLimits.from_env() if limits is None else limits
    serving.configure(limits)
    server_folders.prepare()  # before gradio reads its upload folder: this process's own
    choices = state.model_choices()
    defaults = state.model_info(choices[0]).defaults
    # delete_cache: gradio's own cached files (app/upload_ledger.py removes uploads).
    with gr.Blocks(title="MedEdit", fill_width=True, delete_cache=(limits.upload_age, limits.upload_age)) as demo:
        session = gr.State({})
        held = gr.State(None)  # the image the user brought (app/held_image.py), while they edit it
        with gr.Row(elem_id="mededit-header"):
            gr.Markdown(f"## {TITLE}\n{INTRO}")
            status = gr.Markdown("Loading the model…", elem_id="model-status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=380):
                c = controls(choices, defaults)
            with gr.Column(scale=7, min_width=480):
                r = results()
        examples_slot = gr.Column()
        wiring = Wiring(demo, c, r, session, held)
        rerender = wiring.edit()
        wiring.own_image(rerender)
        wiring.series()
        wiring.model(status)
        wiring.words()
        wiring.examples(examples_slot, rerender)
        add_api_endpoints(demo, defaults)
    demo.queue(max_size=limits.queue_size, default_concurrency_limit=1)
    return demo


def launch_options() -> dict:
    """What launch() takes: the theme and css (Gradio 6 moved them there) and the upload limit."""
    return dict(theme=gr.themes.Soft(), css=CSS, max_file_size=MAX_UPLOAD_BYTES)
