"""Describe an image the user brings: source prompts proposed by the shipped attribute classifier.

    description = describe(image)            # [H, W, 3] uint8, any size
    description.anatomy, description.style   # the prompts to invert and edit it with
    description.findings                     # each attribute: present or not, with its confidence

The classifier reads the modality and every attribute of it; the prompts say what it found in
the registry's own phrases (the words the captioner uses and the sliders move along), so an edit
by slider starts from a prompt that states the attribute's presence or absence. Only what the
classifier sees is described: the lesion's size and place, skin tone, view or exposure are not.

The model's domain check (domain.py) judges the image first: for an image it refuses, of no
modality the model knows, the modality is reported with confidence 0 (the classifier's softmax
would still say "chest X-ray 97%" for a circuit board), and its verdict is in `domain`.
"""

from dataclasses import asdict, dataclass, field

from pipelines.data.attributes import attributes_of
from pipelines.data.uploads import as_rgb_array, fit_pixels
from pipelines.evaluation.classifier import INPUT_SIZE, OUTPUTS, load_classifier, predict_probs
from pipelines.evaluation.domain import DomainCheck, load_domain_check

PRESENT = 0.5


@dataclass
class Finding:
    name: str
    channel: str  # anatomy or style: which prompt states it
    present: bool
    confidence: float  # the classifier's probability of what is stated (present or absent)


@dataclass
class Description:
    modality: str
    modality_confidence: float
    anatomy: str
    style: str
    findings: list[Finding]
    domain: dict = field(default_factory=dict)  # the domain check's verdict (DomainVerdict.record)

    @property
    def refused(self) -> bool:
        return self.domain.get("outcome") == "unknown_modality"

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        found = ", ".join(f"{f.name} {'yes' if f.present else 'no'} ({f.confidence:.0%})" for f in self.findings)
        if self.refused:
            return (f"{self.domain['message']}; the classifier's reading means nothing here, nearest "
                    f"{self.modality}: {found}")
        return f"{self.modality} ({self.modality_confidence:.0%}): {found}"


def dermoscopy_prompts(present: dict[str, bool]) -> tuple[str, str]:
    lesion = "melanoma (MEL)" if present["melanoma"] else "melanocytic nevus (NV)"
    artifacts = [a.phrase for a in attributes_of("dermoscopy", "style") if present[a.name]]
    return f"a dermoscopic image with {lesion}", ", ".join(artifacts) or "no artifacts"


def cxr_prompts(present: dict[str, bool]) -> tuple[str, str]:
    findings = [a.phrase for a in attributes_of("cxr", "anatomy") if present[a.name]]
    devices = [a.phrase for a in attributes_of("cxr", "style") if present[a.name]]
    anatomy = (f"Chest X-ray showing {join(findings)}" if findings
               else "Normal chest X-ray with no significant findings")
    return anatomy, f"with {join(devices)}" if devices else "no devices"


def join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def describe(image, classifier=None, check: DomainCheck | None = None) -> Description:
    """What the classifier finds in `image` (uint8 grey, RGB or RGBA, fitted to its input size first),
    judged by `check` (default: the default model's domain check)."""
    classifier = classifier or load_classifier()
    verdict = (check or load_domain_check()).check(image)
    fitted, _ = fit_pixels(as_rgb_array(image), INPUT_SIZE)
    probs = predict_probs(classifier, [fitted])[0]
    p_cxr = float(probs[OUTPUTS.index("modality_cxr")])
    modality = "cxr" if p_cxr >= PRESENT else "dermoscopy"
    findings = []
    for a in attributes_of(modality):
        p = float(probs[OUTPUTS.index(a.name)])
        findings.append(Finding(a.name, a.channel, p >= PRESENT, p if p >= PRESENT else 1 - p))
    present = {f.name: f.present for f in findings}
    anatomy, style = (cxr_prompts if modality == "cxr" else dermoscopy_prompts)(present)
    confidence = 0.0 if verdict.refused else (p_cxr if modality == "cxr" else 1 - p_cxr)
    return Description(modality, confidence, anatomy, style, findings, verdict.record())
