"""The binary attributes of the two phantom worlds: one registry that every part reads.

Each attribute belongs to a modality and to a conditioning channel (anatomy or style), and carries
the phrase that switches it on in a prompt. The classifier predicts exactly these, in this order,
plus the modality; the sliders and the evaluator iterate over them.
"""

from dataclasses import dataclass

from pipelines.core.errors import MedEditError

MODALITIES = ("dermoscopy", "cxr")
CHANNELS = ("anatomy", "style")


@dataclass(frozen=True)
class Attribute:
    name: str
    modality: str
    channel: str
    phrase: str  # the words that add it to its channel's prompt
    description: str


ATTRIBUTES = (
    # Dermoscopy, after ISIC 2019. "melanoma" false means a melanocytic nevus.
    Attribute("melanoma", "dermoscopy", "anatomy", "melanoma (MEL)",
              "asymmetric lesion, irregular border, several colours (not a nevus)"),
    Attribute("hair", "dermoscopy", "style", "with hairs visible on skin",
              "thin dark curved strands over lesion and skin"),
    Attribute("gel_bubbles", "dermoscopy", "style", "showing gel bubbles",
              "bright round bubbles with a specular rim"),
    Attribute("ruler", "dermoscopy", "style", "with a ruler visible",
              "a graduated scale along an edge"),
    Attribute("ink", "dermoscopy", "style", "showing ink",
              "purple or blue marker strokes"),
    Attribute("vignette", "dermoscopy", "style", "with a dark circular vignette",
              "the dark circular frame of the dermatoscope"),
    # Chest X-ray, after CheXpert.
    Attribute("effusion", "cxr", "anatomy", "pleural effusion",
              "blunted costophrenic angle, basal opacity with a meniscus"),
    Attribute("cardiomegaly", "cxr", "anatomy", "cardiomegaly",
              "enlarged heart, cardiothoracic ratio above 0.5"),
    Attribute("opacity", "cxr", "anatomy", "a focal lung opacity",
              "a rounded focal opacity in a lung field"),
    Attribute("support_devices", "cxr", "style", "support devices",
              "endotracheal tube and central venous line"),
    Attribute("pacemaker", "cxr", "style", "a pacemaker with leads",
              "pacemaker generator below the clavicle with leads to the heart"),
    Attribute("marker", "cxr", "style", "a laterality marker",
              "a radiopaque 'L' or 'R' letter in a corner"),
)

ATTRIBUTE_NAMES = tuple(a.name for a in ATTRIBUTES)
BY_NAME = {a.name: a for a in ATTRIBUTES}


def attributes_of(modality: str, channel: str | None = None) -> tuple[Attribute, ...]:
    """The attributes of one modality (and optionally one channel), in registry order."""
    check_modality(modality)
    return tuple(a for a in ATTRIBUTES
                 if a.modality == modality and (channel is None or a.channel == channel))


def check_modality(modality: str) -> str:
    if modality not in MODALITIES:
        raise MedEditError(f"unknown modality {modality!r}; choose one of: {', '.join(MODALITIES)}")
    return modality


def get_attribute(name: str) -> Attribute:
    if name not in BY_NAME:
        raise MedEditError(f"unknown attribute {name!r}; choose one of: {', '.join(ATTRIBUTE_NAMES)}")
    return BY_NAME[name]


def modality_of(*prompts: str) -> str:
    """The modality a prompt speaks of: chest X-ray words, else dermoscopy."""
    text = " ".join(prompts).lower()
    return "cxr" if any(w in text for w in ("x-ray", "xray", "chest", "radiograph", "cxr")) else "dermoscopy"
