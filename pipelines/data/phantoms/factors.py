"""The factors of each phantom world: their allowed values, how they are sampled, how they are checked.

Binary attributes follow pipelines/attributes.py (registry order); the other factors (size,
position, side, skin tone, lighting, exposure, noise, view) are documented in FACTOR_CHOICES.
Each factor is sampled from its own hash of (seed, name), so overriding one leaves the others unchanged.
"""

from dataclasses import dataclass

from pipelines.data.attributes import attributes_of, check_modality
from pipelines.core.errors import MedEditError
from pipelines.data.phantoms.drawing import unit_hash

SIZE_RANGE = (32, 512)


@dataclass(frozen=True)
class FactorSpec:
    kind: str  # "bool", "choice" or "float"
    description: str
    choices: tuple = ()  # for "choice" (and (False, True) for "bool")
    low: float = 0.0  # for "float"
    high: float = 1.0
    p_true: float = 0.5  # for "bool": sampling probability

    def allowed(self) -> str:
        if self.kind == "float":
            return f"a number in [{self.low}, {self.high}]"
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def check(self, name: str, value):
        """The value in canonical form, or MedEditError naming what is allowed."""
        bad = MedEditError(f"invalid value {value!r} for factor {name!r}; expected {self.allowed()}")
        if self.kind == "bool":
            if isinstance(value, str) or value not in (0, 1):
                raise bad
            return bool(value)
        if self.kind == "choice":
            if value not in self.choices:
                raise bad
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise bad from None
        if isinstance(value, (str, bool)) or not self.low <= number <= self.high:
            raise bad
        return number

    def sample(self, u: float):
        """The value at quantile u in [0, 1)."""
        if self.kind == "bool":
            return bool(u < self.p_true)
        if self.kind == "choice":
            return self.choices[int(u * len(self.choices))]
        return round(self.low + u * (self.high - self.low), 4)


def _binary(modality: str) -> dict[str, FactorSpec]:
    return {a.name: FactorSpec("bool", a.description, (False, True)) for a in attributes_of(modality)}


FACTOR_CHOICES: dict[str, dict[str, FactorSpec]] = {
    "dermoscopy": {
        **_binary("dermoscopy"),
        # Always sampled present: the DiT's phantoms all show a lesion. Rendered without one only
        # when asked (the classifier's negatives for its "lesion" output).
        "lesion": FactorSpec("bool", "a melanocytic lesion is shown (off: bare skin, never melanoma)",
                             (False, True), p_true=1.0),
        "lesion_size": FactorSpec("float", "lesion diameter as a fraction of the image width",
                                  low=0.22, high=0.55),
        "lesion_x": FactorSpec("float", "lesion centre, fraction of the width from the left",
                               low=0.38, high=0.62),
        "lesion_y": FactorSpec("float", "lesion centre, fraction of the height from the top",
                               low=0.38, high=0.62),
        "skin_tone": FactorSpec("float", "0 fair (Fitzpatrick I) to 1 dark (Fitzpatrick VI)",
                                low=0.0, high=1.0),
        "lighting": FactorSpec("float", "0 dim to 1 bright illumination", low=0.0, high=1.0),
    },
    "cxr": {
        **_binary("cxr"),
        "effusion_side": FactorSpec("choice", "side of the effusion (patient's side), used when effusion is on",
                                    ("left", "right", "both")),
        "opacity_side": FactorSpec("choice", "lung of the focal opacity (patient's side), used when opacity is on",
                                   ("left", "right")),
        "opacity_zone": FactorSpec("choice", "lung zone of the focal opacity", ("upper", "middle", "lower")),
        "marker_letter": FactorSpec("choice", "letter of the laterality marker", ("L", "R")),
        "view": FactorSpec("choice", "projection: PA (upright) or AP (portable, scapulae over lungs)",
                           ("PA", "AP")),
        "exposure": FactorSpec("float", "film gamma: below 1 underexposed (whiter), above 1 overexposed (darker)",
                               low=0.7, high=1.3),
        "noise": FactorSpec("float", "0 clean to 1 grainy quantum mottle", low=0.0, high=1.0),
    },
}


def check_size(size) -> int:
    lo, hi = SIZE_RANGE
    if isinstance(size, bool) or not isinstance(size, int) or not lo <= size <= hi:
        raise MedEditError(f"invalid size {size!r}; choose an integer from {lo} to {hi}")
    return size


def sample_factors(modality: str, seed: int) -> dict:
    """Random factors of one phantom, deterministic by seed (each factor from its own hash of the seed)."""
    specs = FACTOR_CHOICES[check_modality(modality)]
    return {name: spec.sample(unit_hash(seed, "factor:" + name)) for name, spec in specs.items()}


def check_factors(modality: str, factors: dict, seed: int) -> dict:
    """A complete, canonical factor dict: unknown names and bad values raise MedEditError;
    factors left out are taken from sample_factors(modality, seed)."""
    specs = FACTOR_CHOICES[check_modality(modality)]
    unknown = [k for k in factors if k not in specs]
    if unknown:
        raise MedEditError(f"unknown factor {unknown[0]!r} for {modality}; choose from: {', '.join(specs)}")
    full = {} if len(factors) == len(specs) else sample_factors(modality, seed)
    full.update(factors)
    checked = {name: spec.check(name, full[name]) for name, spec in specs.items()}
    if modality == "dermoscopy" and not checked["lesion"]:
        if "melanoma" in factors and checked["melanoma"]:
            raise MedEditError("factor 'melanoma' needs a lesion: melanoma=True with lesion=False")
        checked["melanoma"] = False  # bare skin: the sampled melanoma, asked for by nobody, goes
    return checked
