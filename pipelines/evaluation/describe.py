"""Describe an image the user brings: source prompts proposed by the model's attribute classifier.

    description = describe(image)            # [H, W, 3] uint8, any size
    description.anatomy, description.style   # the prompts to invert and edit it with
    description.findings                     # each attribute: present or not, with its confidence

The classifier reads the modality and every attribute of it; the prompts say what it found in
the registry's own phrases (the words the captioner uses and the sliders move along), so an edit
by slider starts from a prompt that states the attribute's presence or absence. Only what the
classifier sees is described: the lesion's size and place, skin tone, view or exposure are not.
A classifier with a `lesion` output says first whether a dermoscopy image shows a lesion at all;
where it finds none, the description says "no lesion found" and makes no nevus or melanoma call
(that output would read a nevus into bare skin).

The classifier is the model's (its own where it ships one: classifier.model_classifier), as its
domain check holds it. That check (domain.py) judges the image first: for an image it refuses, of
no modality the model knows, the modality is reported with confidence 0 (the classifier's softmax
would still say "chest X-ray 97%" for a circuit board), and its verdict is in `domain`.
"""

from dataclasses import asdict, dataclass, field

from pipelines.data.attributes import attributes_of
from pipelines.data.uploads import as_rgb_array, fit_pixels
from pipelines.evaluation.classifier import LESION, OUTPUTS, lesion_column, model_classifier, predict_probs
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
        found = ", ".join(("no lesion found" if f.name == LESION and not f.present
                           else f"{f.name} {'yes' if f.present else 'no'}") + f" ({f.confidence:.0%})"
                          for f in self.findings)
        if self.refused:
            return (f"{self.domain['message']}; the classifier's reading means nothing here, nearest "
                    f"{self.modality}: {found}")
        return f"{self.modality} ({self.modality_confidence:.0%}): {found}"


def dermoscopy_prompts(present: dict[str, bool]) -> tuple[str, str]:
    """(anatomy, style); `present` may say lesion False (then melanoma is not read)."""
    artifacts = [a.phrase for a in attributes_of("dermoscopy", "style") if present[a.name]]
    if not present.get(LESION, True):
        return "a dermoscopic image of skin with no lesion", ", ".join(artifacts) or "no artifacts"
    lesion = "melanoma (MEL)" if present["melanoma"] else "melanocytic nevus (NV)"
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
    judged by `check` (default: the default model's domain check). The classifier (default) is the
    check's: the one that reads its model's images, the model's own where it ships one."""
    check = check or load_domain_check()
    classifier = classifier or check.classifier or model_classifier()
    verdict = check.check(image)
    fitted, _ = fit_pixels(as_rgb_array(image), classifier.config.input_size)
    every = predict_probs(classifier, [fitted])
    probs, lesion = every[0], lesion_column(every)
    p_cxr = float(probs[OUTPUTS.index("modality_cxr")])
    modality = "cxr" if p_cxr >= PRESENT else "dermoscopy"
    findings = []
    bare = False
    if modality == "dermoscopy" and lesion is not None:
        p = float(lesion[0])
        bare = p < PRESENT
        findings.append(Finding(LESION, "anatomy", not bare, 1 - p if bare else p))
    for a in attributes_of(modality):
        if bare and a.name == "melanoma":
            continue  # no lesion, so no nevus or melanoma to call
        p = float(probs[OUTPUTS.index(a.name)])
        findings.append(Finding(a.name, a.channel, p >= PRESENT, p if p >= PRESENT else 1 - p))
    present = {f.name: f.present for f in findings}
    anatomy, style = (cxr_prompts if modality == "cxr" else dermoscopy_prompts)(present)
    confidence = 0.0 if verdict.refused else (p_cxr if modality == "cxr" else 1 - p_cxr)
    return Description(modality, confidence, anatomy, style, findings, verdict.record())
