"""`mededit.json`: what a MedEdit model folder holds beyond diffusers' own configs.

It lists the attributes the model was trained on with the phrase that switches each on (the
sliders are built from it) with, where it was measured (scripts/slider_ranges.py), the scales at
which its slider still edits without wrecking the image (`range`: [low, high]; another model has
other safe ranges, so they live with the model; without one, limits.SLIDER_RANGE holds), the image
size, the text encoder and how many tokens of each prompt it reads, and sampling defaults.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipelines.data.attributes import ATTRIBUTES
from pipelines.core.errors import MedEditError
from pipelines.core.limits import SLIDER_RANGE
from pipelines.model.sizes import IMAGE_SIZE
from pipelines.model.text_window import FIRST_LENGTH, LONGEST_LENGTH, MAX_LENGTH

INFO_FILE = "mededit.json"
REQUIRED_DEFAULTS = ("steps", "anatomy_scale", "style_scale", "swap_at")


def check_text_tokens(n, name: str = "text_tokens") -> None:
    """A caption window the text encoder can give: [CLS], one word, [SEP] at least."""
    if isinstance(n, bool) or not isinstance(n, int) or not 3 <= n <= LONGEST_LENGTH:
        raise MedEditError(f"{name} must be a whole number from 3 to {LONGEST_LENGTH}, got {n!r}")


@dataclass
class ModelInfo:
    name: str
    image_size: int
    text_encoder: str
    conditioning: str  # "separate" (HFFM channels) or "joined" (one prompt, ablation)
    attributes: list[dict]  # name, modality, channel, phrase
    defaults: dict  # steps, anatomy_scale, style_scale, swap_at, locality (0.0 when absent)
    training: dict = field(default_factory=dict)
    text_tokens: int = FIRST_LENGTH  # MiniLM tokens read per channel ([CLS], [SEP] included)

    def __post_init__(self):
        missing = [key for key in REQUIRED_DEFAULTS if key not in self.defaults]
        if missing:
            raise MedEditError(f"its sampling defaults lack {', '.join(missing)}")
        # Folders written before local edits existed keep editing the whole image.
        self.defaults = {"locality": 0.0, **self.defaults}
        check_text_tokens(self.text_tokens)
        for a in self.attributes:
            if "range" in a:
                check_slider_range(a.get("name"), a["range"])

    @classmethod
    def embedded_default(cls, conditioning: str = "separate", text_tokens: int = MAX_LENGTH,
                         image_size: int = IMAGE_SIZE) -> "ModelInfo":
        return cls(
            name="mededit-default", image_size=image_size,
            text_encoder="sentence-transformers/all-MiniLM-L6-v2", conditioning=conditioning,
            attributes=[{"name": a.name, "modality": a.modality, "channel": a.channel,
                         "phrase": a.phrase} for a in ATTRIBUTES],
            defaults={"steps": 20, "anatomy_scale": 3.0, "style_scale": 3.0, "swap_at": 0.2,
                      "locality": 0.3},
            text_tokens=text_tokens)

    @property
    def joined(self) -> bool:
        """Both prompts in one channel: the ablation's baseline (conditioners.prompt_branches)."""
        return self.conditioning == "joined"

    def attribute(self, name: str) -> dict:
        for a in self.attributes:
            if a["name"] == name:
                return a
        names = ", ".join(a["name"] for a in self.attributes)
        raise MedEditError(f"unknown attribute {name!r}; this model has: {names}")

    def slider_range(self, name: str) -> tuple[float, float]:
        """The scales the attribute's slider accepts: the model's measured range, else the outer one."""
        return tuple(self.attribute(name).get("range", SLIDER_RANGE))

    def slider(self, name: str, scale: float) -> dict:
        """The attribute a slider moves, once its scale is checked against the model's range."""
        attribute = self.attribute(name)
        low, high = self.slider_range(name)
        if not low <= scale <= high:
            why = (f"the range where it was measured to edit without wrecking the image, in its {INFO_FILE}"
                   if "range" in attribute else "the outer limit; its model stores no measured range")
            raise MedEditError(f"slider {name} must be between {low:g} and {high:g} for the model "
                               f"{self.name} ({why}), got {scale:g}")
        return attribute


def check_slider_range(name, value) -> None:
    """A stored range: [low, high] with low <= 0 <= high, inside the outer SLIDER_RANGE."""
    low, high = SLIDER_RANGE
    if not (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            and low <= value[0] <= 0 <= value[1] <= high):
        raise MedEditError(f"attribute {name!r} has slider range {value!r}; give [low, high] with "
                           f"{low:g} <= low <= 0 <= high <= {high:g}")


def write_model_info(folder: Path, info: ModelInfo) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / INFO_FILE).write_text(json.dumps(asdict(info), indent=2) + "\n")


def read_model_info(folder: Path) -> ModelInfo:
    path = Path(folder) / INFO_FILE
    if not path.exists():
        raise MedEditError(f"{folder} is not a MedEdit model folder: {INFO_FILE} is missing")
    try:
        return ModelInfo(**json.loads(path.read_text()))
    except (TypeError, json.JSONDecodeError, MedEditError) as error:
        raise MedEditError(f"{path} is not a valid model description: {error}") from None
