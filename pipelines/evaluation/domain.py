"""Is an image like the ones a model was trained on? A domain check for every model.

    check = load_domain_check(source)          # the model's statistics (<folder>/domain/), the model's classifier
    verdict = check.check(image)               # [H, W, 3] uint8, any size
    verdict = gate(check, image, edit_anyway)  # the same, raising DomainRefused on a refusal
    verdict.outcome, verdict.message           # "in_domain" | "unlike_training" | "unknown_modality" | "unchecked"

The classifier's softmax is no domain check (it says "chest X-ray 97%" for a circuit board). This
is FRODO's (Calli et al., MIDL 2019): the attribute classifier's activations after every stage,
pooled (mean and standard deviation per channel), and their Mahalanobis distance to each modality's
training images (a Gaussian per modality and stage, fitted by domain_fit.py). Each stage's distance
is divided by its scale (what nearly no held-out training image passes), the farthest stage counts,
and the nearest modality's: a score of 1 is the edge of the training images. Early stages catch
other textures and intensities (CT, MR, photographs, noise), late ones other shapes.

Two limits, set at fitting time (no image `eval --domain` measures on is used):
`flag`, just above nearly every held-out training image (in every form an upload takes: JPEG,
noise, rescaled); `refuse`, chosen on a tuning split (domain_limits.py). Between them: unlike
the training images but near a known modality, edited with a warning; above `refuse`: refused
unless the caller edits anyway. The classifier is the one that reads the model's images
(classifier.model_classifier: the folder's own classifier/, else the default); the statistics name
the classifier they were fitted with (its weights' sha256): other weights give "unchecked", never a
wrong verdict.

Files, per model folder (a MedEdit folder, a PixArt folder or an adapter): domain/domain.safetensors
(per modality and stage the mean and the precision matrix; each stage's scale) and domain/domain.json
(the limits, the classifier's sha256, what they were fitted on and how).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save

from pipelines.core.errors import MedEditError
from pipelines.core.files import write_atomic
from pipelines.data.uploads import as_rgb_array, fit_pixels
from pipelines.evaluation.classifier import (DEFAULT_FOLDER, WEIGHTS_FILE, AttributeClassifier, classifier_folder,
                                             model_classifier, prepare_images)

DOMAIN_FOLDER = "domain"  # inside a model folder (or an adapter's)
STATS_FILE, INFO_FILE = "domain.safetensors", "domain.json"
FORMAT = "mededit-domain/1"
OUTCOMES = ("in_domain", "unlike_training", "unknown_modality", "unchecked")
BATCH = 64


class DomainRefused(MedEditError):
    """An image of no modality the model knows, refused (the caller may edit anyway)."""


def classifier_sha256(folder=None) -> str:
    return hashlib.sha256((Path(folder or DEFAULT_FOLDER) / WEIGHTS_FILE).read_bytes()).hexdigest()


# --- features ------------------------------------------------------------------------------------

@torch.no_grad()
def domain_features(classifier: AttributeClassifier, images) -> list[np.ndarray]:
    """Per stage of the classifier, [B, 2 x channels] float64: each channel's mean and standard
    deviation over the image (early stages see intensity and texture, late ones shapes)."""
    x = prepare_images(images, classifier.config.input_size)
    was_training = classifier.training
    classifier.eval()
    stages = []
    try:
        for start in range(0, len(x), BATCH):
            h, pooled = x[start:start + BATCH], []
            for layer in classifier.body:
                h = layer(h)
                if isinstance(layer, torch.nn.ReLU):  # the end of a stage
                    pooled.append(torch.cat([h.mean(dim=(2, 3)), h.std(dim=(2, 3))], dim=1))
            stages.append(pooled)
    finally:
        classifier.train(was_training)
    return [torch.cat(parts).double().numpy() for parts in zip(*stages)]


# --- statistics ----------------------------------------------------------------------------------

@dataclass
class DomainStats:
    """Per modality and stage a Gaussian of the features; each stage's scale; the two limits on
    the score; what was fitted."""
    means: dict[str, list[np.ndarray]]  # modality -> per stage [F_k]
    precisions: dict[str, list[np.ndarray]]  # modality -> per stage [F_k, F_k]
    scales: np.ndarray  # [stages]: a stage's distance that nearly no held-out training image passes
    flag: float  # score above which an image is unlike the training images
    refuse: float  # score above which it is of no modality the model knows
    info: dict = field(default_factory=dict)  # classifier_sha256, fitted on, calibration figures

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.means)

    def distances(self, features: list[np.ndarray]) -> np.ndarray:
        """[B, modalities, stages]: squared Mahalanobis distance per dimension."""
        return np.stack([np.stack([np.einsum("bi,ij,bj->b", f - mean, precision, f - mean) / f.shape[1]
                                   for f, mean, precision in zip(features, self.means[m], self.precisions[m])],
                                  axis=1) for m in self.modalities], axis=1)

    def scores(self, features: list[np.ndarray]) -> tuple[np.ndarray, list[str]]:
        """Each image's score and the nearest modality: per modality the farthest stage, in units
        of that stage's scale (FRODO's per-layer distances), then the nearest modality's."""
        per = (self.distances(features) / self.scales).max(axis=2)
        nearest = per.argmin(axis=1)
        return per[np.arange(len(per)), nearest], [self.modalities[i] for i in nearest]


def save_domain(folder, stats: DomainStats) -> Path:
    """domain/domain.safetensors and domain/domain.json in a model folder."""
    target = Path(folder) / DOMAIN_FOLDER
    target.mkdir(parents=True, exist_ok=True)
    tensors = {"scales": torch.from_numpy(np.asarray(stats.scales)).float()}
    for m in stats.modalities:
        for k, (mean, precision) in enumerate(zip(stats.means[m], stats.precisions[m])):
            tensors[f"{m}.stage{k}.mean"] = torch.from_numpy(mean).float().contiguous()
            tensors[f"{m}.stage{k}.precision"] = torch.from_numpy(precision).float().contiguous()
    write_atomic(target / STATS_FILE, save(tensors, metadata={"format": FORMAT}))
    info = {"format": FORMAT, "modalities": list(stats.modalities), "flag": stats.flag,
            "refuse": stats.refuse, **stats.info}
    write_atomic(target / INFO_FILE, (json.dumps(info, indent=2) + "\n").encode())
    return target


def load_domain(folder) -> DomainStats | None:
    """The statistics in a model folder's domain/, or None where there are none."""
    target = Path(folder) / DOMAIN_FOLDER
    if not (target / STATS_FILE).is_file() or not (target / INFO_FILE).is_file():
        return None
    try:
        info = json.loads((target / INFO_FILE).read_text())
        tensors = load_file(target / STATS_FILE)
        modalities = info.pop("modalities")
        if info.get("format") != FORMAT:
            raise MedEditError(f"format {info.get('format')!r}, expected {FORMAT}")
        scales = tensors["scales"].double().numpy()
        stages = range(len(scales))
        means = {m: [tensors[f"{m}.stage{k}.mean"].double().numpy() for k in stages] for m in modalities}
        precisions = {m: [tensors[f"{m}.stage{k}.precision"].double().numpy() for k in stages] for m in modalities}
        return DomainStats(means, precisions, scales, float(info.pop("flag")), float(info.pop("refuse")), info)
    except (KeyError, ValueError, OSError, MedEditError) as error:
        raise MedEditError(f"the domain statistics in {target} cannot be read ({error}); fit them again "
                           f"with `python -m pipelines fit-domain --model {folder}`") from None


def domain_folder(source: str | None) -> Path | None:
    """Where a model source keeps its statistics: the embedded model's folder, a local folder (a
    MedEdit model, a PixArt pipeline or an adapter), a Hub repo's cached snapshot; None if none."""
    from pipelines.model.embedded import EMBEDDED, EMBEDDED_FOLDER
    from pipelines.model.loading import default_source

    source = source or default_source()
    if source == EMBEDDED:
        return EMBEDDED_FOLDER
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    try:
        from pipelines.model.sources import resolve_source

        return resolve_source(source, offline=True)  # only what is cached: never a download for a check
    except MedEditError:
        return None


# --- the verdict ---------------------------------------------------------------------------------

@dataclass
class DomainVerdict:
    outcome: str  # one of OUTCOMES
    score: float | None  # None when unchecked
    nearest_modality: str | None
    flag: float | None
    refuse: float | None
    message: str
    edit_anyway: bool = False  # set by a caller that edits an image the check refused

    @property
    def refused(self) -> bool:
        return self.outcome == "unknown_modality"

    @property
    def warning(self) -> str | None:
        """What an edit of this image must say on screen, in the API result and in its files."""
        if self.outcome == "in_domain":
            return None
        if self.refused:
            return f"edited anyway: {self.message}" if self.edit_anyway else self.message
        return self.message

    def record(self) -> dict:
        """What an export's provenance keeps."""
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def verdict_for(score: float, nearest: str, stats: DomainStats) -> DomainVerdict:
    measured = (f"feature distance {score:.2f} to the nearest training modality ({nearest}); "
                f"training images lie below {stats.flag:.2f}")
    if score <= stats.flag:
        return DomainVerdict("in_domain", score, nearest, stats.flag, stats.refuse,
                             f"like the model's training images: {measured}")
    if score <= stats.refuse:
        return DomainVerdict("unlike_training", score, nearest, stats.flag, stats.refuse,
                             f"unlike the model's training images ({measured}), though near enough to "
                             f"a modality it knows (refused above {stats.refuse:.2f}): check the result "
                             "with care")
    return DomainVerdict("unknown_modality", score, nearest, stats.flag, stats.refuse,
                         f"not an image of a modality this model knows ({', '.join(stats.modalities)}): "
                         f"{measured}, and refused above {stats.refuse:.2f}")


class DomainCheck:
    """A model's domain check: its statistics and the classifier they were fitted with (the model's
    classifier, kept where there are no statistics too: Describe reads the image with it)."""

    def __init__(self, stats: DomainStats | None, classifier: AttributeClassifier | None = None,
                 unchecked_reason: str = ""):
        self.stats, self.classifier = stats, classifier
        self.unchecked_reason = unchecked_reason

    def scores(self, images) -> tuple[np.ndarray, list[str]]:
        return self.stats.scores(domain_features(self.classifier, images))

    def gate(self, image, edit_anyway: bool = False) -> DomainVerdict:
        return gate(self, image, edit_anyway)

    def check(self, image) -> DomainVerdict:
        """The verdict on one image (uint8 grey, RGB or RGBA, any size)."""
        if self.stats is None:
            return DomainVerdict("unchecked", None, None, None, None, self.unchecked_reason)
        fitted, _ = fit_pixels(as_rgb_array(image), self.classifier.config.input_size)
        scores, nearest = self.scores([fitted])
        return verdict_for(float(scores[0]), nearest[0], self.stats)


def load_domain_check(source: str | None = None) -> DomainCheck:
    """The check of a model source (as load_model takes it), before the model loads."""
    from pipelines.model.loading import default_source

    return folder_check(domain_folder(source), source or default_source())


def folder_check(folder: Path | None, shown: str) -> DomainCheck:
    """The check whose statistics lie in `folder` (a model's, see LoadedModel.domain_folder);
    "unchecked", with the reason and the command that fits them, where there are none or they
    belong to another classifier. Loaded once per folder and version of its files (the statistics'
    and the classifier's weights')."""
    stats_file = None if folder is None else Path(folder) / DOMAIN_FOLDER / STATS_FILE
    version = stats_file.stat().st_mtime_ns if stats_file is not None and stats_file.is_file() else None
    weights = classifier_folder(folder) / WEIGHTS_FILE
    classifier_version = weights.stat().st_mtime_ns if weights.is_file() else None
    return _cached_check(None if folder is None else str(folder), version, classifier_version, shown)


@lru_cache(maxsize=8)
def _cached_check(folder: str | None, version: int | None, classifier_version: int | None,
                  shown: str) -> DomainCheck:
    fit = f"fit them with `python -m pipelines fit-domain --model {shown}`"
    stats = load_domain(folder) if folder is not None and version is not None else None
    classifier = model_classifier(folder)  # the model's own where it ships one
    if stats is None:
        return DomainCheck(None, classifier, f"not checked: the model {shown} has no domain statistics "
                                             f"(how far an image lies from its training images); {fit}")
    if stats.info.get("classifier_sha256") != classifier_sha256(classifier_folder(folder)):
        return DomainCheck(None, classifier, f"not checked: the domain statistics of {shown} were fitted "
                                             f"with another attribute classifier; {fit}")
    return DomainCheck(stats, classifier)


def with_domain_check(pipeline, shown: str | None = None):
    """A MedEditPipeline whose uploads its model's domain check judges (editing/ cannot import
    this module, so whoever makes a pipeline sets it: the command line and the app do)."""
    pipeline.domain_check = folder_check(pipeline.model.domain_folder, shown or pipeline.model.model_id)
    return pipeline


def gate(check: DomainCheck, image, edit_anyway: bool = False) -> DomainVerdict:
    """The verdict on an image about to be edited: DomainRefused when it is of no known modality
    and the caller did not ask to edit anyway (the message says how)."""
    verdict = check.check(image)
    if verdict.refused and not edit_anyway:
        raise DomainRefused(f"refused: {verdict.message}. To edit it all the same (a research use; every "
                            "output then says so), ask to edit anyway (app: 'Edit anyway'; API: "
                            "edit_anyway=true; command line: --edit-anyway)")
    verdict.edit_anyway = verdict.refused and edit_anyway
    return verdict
