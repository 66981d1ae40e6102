"""What the user sets for an edit: the prompts and the Edit button first (they fit the first
screen), then the settings, the attribute sliders and the model, each folded away below.

Labels are plain words; each control's help names the technical term it stands for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from pipelines.core.limits import LOCALITY_RANGE, SCALE_RANGE, SEED_MAX, SLIDER_RANGE, STEPS_RANGE, SWAP_RANGE

from app import state
from app.examples import EXAMPLES
from app.handlers import SAMPLING_SETTINGS
from app.image_panel import ImagePanel, image_panel

MODALITY_NAMES = {"dermoscopy": "Dermoscopy", "cxr": "Chest X-ray"}
CHANNEL_NAMES = {"anatomy": "Anatomy & pathology", "style": "Acquisition style"}


@dataclass
class Controls:
    anatomy: gr.Textbox
    style: gr.Textbox
    to_anatomy: gr.Textbox
    to_style: gr.Textbox
    source_words: gr.Markdown  # words of the source prompts the model did not learn
    edit_words: gr.Markdown  # the same for the edit's prompts
    edit_button: gr.Button
    swap_at: gr.Slider
    locality: gr.Slider
    anatomy_scale: gr.Slider
    style_scale: gr.Slider
    seed: gr.Number
    randomize: gr.Button
    steps: gr.Slider
    slider_tabs: gr.Tabs
    sliders: dict[str, gr.Slider]
    model: gr.Dropdown
    image: ImagePanel  # the user's own image

    def form(self) -> dict:
        """The components behind handlers.EditForm, by its field names."""
        return {"model": self.model, "anatomy": self.anatomy, "style": self.style, "to_anatomy": self.to_anatomy,
                "to_style": self.to_style, "swap_at": self.swap_at, "seed": self.seed, "steps": self.steps,
                "anatomy_scale": self.anatomy_scale, "style_scale": self.style_scale, "locality": self.locality,
                "refresh": self.image.refresh, "sliders": self.sliders}

    def prompts(self) -> dict:
        return {"anatomy": self.anatomy, "style": self.style, "to_anatomy": self.to_anatomy, "to_style": self.to_style}

    def sampling_settings(self) -> dict:
        return {key: getattr(self, key) for key in SAMPLING_SETTINGS}


def readable(name: str) -> str:
    return name.replace("_", " ").capitalize()


def prompt_boxes():
    first = EXAMPLES[0]
    with gr.Group():
        anatomy = gr.Textbox(first.anatomy, label="Source image: anatomy & pathology", lines=2, max_lines=3,
                             elem_id="anatomy")
        style = gr.Textbox(first.style, label="Source image: acquisition style", elem_id="style")
    source_words = gr.Markdown(elem_id="source-words", elem_classes="mededit-words")
    with gr.Group():
        to_anatomy = gr.Textbox(first.to_anatomy, label="Edit to: anatomy & pathology", lines=2, max_lines=3,
                                placeholder="empty: keep the source's", elem_id="to-anatomy")
        to_style = gr.Textbox(first.to_style, label="Edit to: acquisition style",
                              placeholder="empty: keep the source's", elem_id="to-style")
    edit_words = gr.Markdown(elem_id="edit-words", elem_classes="mededit-words")
    return anatomy, style, to_anatomy, to_style, source_words, edit_words


def settings_panel(defaults: dict):
    with gr.Accordion("Edit strength and settings", open=False, elem_id="settings"):
        swap_at = gr.Slider(*SWAP_RANGE, value=EXAMPLES[0].swap_at, step=0.05, elem_id="swap-at",
                            label="Edit strength: early = stronger",
                            info="Technical name: swap point, the share of the denoising steps made with the "
                                 "source prompts before the edit's take over. 0: every step edited (strongest); "
                                 "1: no edit.")
        locality = gr.Slider(*LOCALITY_RANGE, value=defaults["locality"], step=0.05, elem_id="locality",
                             label="Keep the rest of the image",
                             info="Technical name: locality. 0 lets the whole image change; higher keeps the "
                                  "source outside a tighter region where the edit acts (a DiffEdit-style mask).")
        with gr.Row():
            anatomy_scale = gr.Slider(*SCALE_RANGE, value=defaults["anatomy_scale"], step=0.5,
                                      label="Follow the anatomy prompt",
                                      info="Technical name: anatomy guidance scale (classifier-free guidance)")
            style_scale = gr.Slider(*SCALE_RANGE, value=defaults["style_scale"], step=0.5,
                                    label="Follow the style prompt",
                                    info="Technical name: style guidance scale")
        with gr.Row(equal_height=True):
            seed = gr.Number(EXAMPLES[0].seed, label="Variation", precision=0, minimum=0, maximum=SEED_MAX, scale=3,
                             info="Technical name: seed. The same seed gives the same image.")
            randomize = gr.Button("Another variation", scale=1)
        steps = gr.Slider(*STEPS_RANGE, value=defaults["steps"], step=1, label="Detail and time",
                          info="Technical name: denoising steps. More take longer.")
    return swap_at, locality, anatomy_scale, style_scale, seed, randomize, steps


def slider_panel(attributes: list[dict]) -> tuple[gr.Tabs, dict[str, gr.Slider]]:
    """Attribute sliders grouped by modality (tabs) and channel (columns)."""
    sliders = {}
    modalities = list(dict.fromkeys(a["modality"] for a in attributes))
    with gr.Accordion("Add or remove a finding or artifact", open=False, elem_id="attribute-sliders"):
        gr.Markdown("0 is off; + adds, − removes, on top of the edit's prompts "
                    "(technical name: attribute sliders, a direction in the prompt's embedding).")
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
                                    # the model's measured range (mededit.json), else the outer one
                                    low, high = a.get("range", SLIDER_RANGE)
                                    sliders[a["name"]] = gr.Slider(low, high, value=0, step=0.1,
                                                                   label=readable(a["name"]),
                                                                   info=f"“{a['phrase']}”",
                                                                   elem_id=f"slider-{a['name']}")
    return tabs, sliders


def picker_info() -> str:
    """Where the choices come from, and each shipped model not offered with why (one in training)."""
    left_out = "".join(f" Not offered: {Path(path).name} ({why})." for path, why in state.models_not_offered().items())
    return "offered by MEDEDIT_MODEL (comma-separated), else what ships in assets/ ('embedded': the default)." + left_out


def controls(choices: list[str], defaults: dict) -> Controls:
    anatomy, style, to_anatomy, to_style, source_words, edit_words = prompt_boxes()
    edit_button = gr.Button("Edit", variant="primary", elem_id="edit-button")
    image = image_panel()
    swap_at, locality, anatomy_scale, style_scale, seed, randomize, steps = settings_panel(defaults)
    slider_tabs, sliders = slider_panel(state.all_attributes())
    with gr.Accordion("Model", open=False, elem_id="model-panel"):
        model = gr.Dropdown(choices, value=choices[0], label="Model", elem_id="model", info=picker_info())
    return Controls(anatomy, style, to_anatomy, to_style, source_words, edit_words, edit_button, swap_at, locality,
                    anatomy_scale, style_scale, seed, randomize, steps, slider_tabs, sliders, model, image)
