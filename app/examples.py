"""Ready edits for both modalities, worded like the captions the model was trained on.

Each example is a source (anatomy + style prompt) and an edit: new prompts and/or sliders.
"""

from dataclasses import dataclass, field

NEVUS = "a dermoscopic image with melanocytic nevus (NV), a medium-sized symmetric, evenly brown lesion in the centre"
MELANOMA = "a dermoscopic image with melanoma (MEL), a medium-sized asymmetric multicoloured lesion in the centre"
SKIN = "light skin, even lighting"
NORMAL_CXR = "Normal chest X-ray with no significant findings, normal heart size"
CXR_STYLE = "PA view, good exposure, low noise"


@dataclass(frozen=True)
class ReadyEdit:
    label: str
    anatomy: str
    style: str
    to_anatomy: str = ""  # empty: the source prompt is kept
    to_style: str = ""
    sliders: dict = field(default_factory=dict)
    swap_at: float = 0.2
    seed: int = 7


EXAMPLES = (
    ReadyEdit("Dermoscopy: add hair", NEVUS, f"{SKIN}, no artifacts",
              to_style=f"{SKIN}, with hairs visible on skin"),
    ReadyEdit("Dermoscopy: add a ruler", NEVUS, f"{SKIN}, no artifacts",
              to_style=f"{SKIN}, with a ruler visible", seed=11),
    ReadyEdit("Dermoscopy: nevus to melanoma", NEVUS, f"{SKIN}, no artifacts", to_anatomy=MELANOMA,
              swap_at=0.1, seed=3),
    ReadyEdit("Dermoscopy: hair by slider", NEVUS, f"{SKIN}, no artifacts", sliders={"hair": 1.0}, seed=5),
    ReadyEdit("Chest X-ray: add an effusion", NORMAL_CXR, f"{CXR_STYLE}, no devices",
              to_anatomy="Chest X-ray showing right pleural effusion blunting the costophrenic angle, "
                         "normal heart size", swap_at=0.1, seed=2),
    ReadyEdit("Chest X-ray: add a pacemaker", NORMAL_CXR, f"{CXR_STYLE}, no devices",
              to_style=f"{CXR_STYLE}, with a pacemaker with leads", seed=4),
)


def example_values(slider_names: list[str]) -> list[dict]:
    """Each example as the values of the UI's controls, by name (every slider: 0 unless it moves)."""
    return [{"anatomy": x.anatomy, "style": x.style, "to_anatomy": x.to_anatomy, "to_style": x.to_style,
             "swap_at": x.swap_at, "seed": x.seed,
             "sliders": {name: float(x.sliders.get(name, 0.0)) for name in slider_names}} for x in EXAMPLES]
