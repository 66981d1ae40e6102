"""The attribute classifier that judges generated and edited images.

    from pipelines.evaluation.classifier import load_classifier, predict_probs, OUTPUTS
    clf = load_classifier()                 # assets/classifier (safetensors + config.json)
    clf = model_classifier(model.domain_folder)   # the one that reads a model's images: its own, if it ships one
    probs = predict_probs(clf, images)      # [B, 13 or 14] sigmoids, columns in clf.config.outputs order
    lesion_probability(clf, images)         # [B] "a lesion is shown", or None for a classifier without it

A small CNN on square RGB in [-1, 1] of its configured input size (64 px for the 64-px model; any
other image is box-filtered to it): per stage a 3x3 convolution, a norm and ReLU, then 2x2
max-pooling (none after the last stage); global average pooling (`features`, also what FID and
KID compare: distribution.py); one linear layer to 13 logits, and one more for `lesion` where the
classifier has that output (its own layer, so every weight of a trained 13-output classifier
carries over when the output is added: `train classifier --init`).
Outputs are the 12 registry attributes (0 where not applicable to the image's modality),
``modality_cxr`` and optionally ``lesion`` (a dermoscopy image shows a lesion; 0 on bare skin and on
chest X-rays), always in that order. Trained by ``python -m pipelines train classifier``
(pipelines/training/classifier.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from pipelines.data.attributes import ATTRIBUTE_NAMES
from pipelines.core.errors import MedEditError
from pipelines.core.files import ASSETS

OUTPUTS = ATTRIBUTE_NAMES + ("modality_cxr",)  # every classifier's first outputs, in this order
LESION = "lesion"
WITH_LESION = OUTPUTS + (LESION,)
INPUT_SIZE = 64  # the default; a classifier's own is config.input_size
INPUT_SIZE_RANGE = (32, 256)
DEFAULT_FOLDER = ASSETS / "classifier"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
BATCH = 64  # prediction batch: bounded memory, and results do not depend on it (eval mode)


@dataclass(frozen=True)
class ClassifierConfig:
    widths: tuple[int, ...] = (32, 64, 128, 128)
    norm: str = "batch"  # "batch" or "group"
    input_size: int = INPUT_SIZE
    outputs: tuple[str, ...] = OUTPUTS

    def __post_init__(self):
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        if self.norm not in ("batch", "group"):
            raise MedEditError(f"classifier norm {self.norm!r}: choose 'batch' or 'group'")
        if not self.widths or min(self.widths) < 1:
            raise MedEditError(f"classifier widths {self.widths!r}: need positive channel counts")
        if self.outputs not in (OUTPUTS, WITH_LESION):
            raise MedEditError(f"classifier outputs {', '.join(self.outputs)}: expected {', '.join(OUTPUTS)}"
                               f" and optionally {LESION}")
        low, high = INPUT_SIZE_RANGE
        if isinstance(self.input_size, bool) or not isinstance(self.input_size, int) \
                or not low <= self.input_size <= high:
            raise MedEditError(f"classifier input size {self.input_size!r}: choose a whole number of "
                               f"pixels from {low} to {high}")

    @property
    def has_lesion(self) -> bool:
        return LESION in self.outputs


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(min(8, channels), channels)


class AttributeClassifier(nn.Module):
    """Image [B, 3, S, S] in [-1, 1] (S: config.input_size) -> 13 or 14 logits (sigmoid gives
    probabilities)."""

    def __init__(self, config: ClassifierConfig | None = None, **kwargs):
        super().__init__()
        self.config = config or ClassifierConfig(**kwargs)
        layers, channels = [], 3
        for i, width in enumerate(self.config.widths):
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False),
                       _norm(self.config.norm, width), nn.ReLU(inplace=True)]
            if i < len(self.config.widths) - 1:
                layers.append(nn.MaxPool2d(2))  # max keeps thin strokes (hair, ink) seen at low res
            channels = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(channels, len(OUTPUTS))
        self.lesion_head = nn.Linear(channels, 1) if self.config.has_lesion else None

    @property
    def feature_dim(self) -> int:
        return self.config.widths[-1]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        if self.lesion_head is None:
            return self.head(features)
        return torch.cat([self.head(features), self.lesion_head(features)], dim=1)


# ----------------------------------------------------------------------------- save / load

def save_classifier(clf: AttributeClassifier, folder, extra: dict | None = None,
                    dtype: torch.dtype = torch.float32) -> Path:
    """model.safetensors + config.json (architecture, outputs, input size, and any extra info).
    Floating-point tensors are stored as `dtype` (float16 halves the file; it loads as float32)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.to(dtype) if v.is_floating_point() else v).detach().contiguous().clone()
             for k, v in clf.state_dict().items()}
    save_file(state, folder / WEIGHTS_FILE, metadata={"format": "pt"})
    config = asdict(clf.config)
    config["outputs"] = list(config["outputs"])
    config["widths"] = list(config["widths"])
    config.update(extra or {})
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return folder


def classifier_folder(model_folder=None) -> Path:
    """The classifier that judges a model's images: the one its folder ships (MODEL/classifier: the
    256-px model's reads 128 px), else the default (assets/classifier, 64 px)."""
    own = Path(model_folder) / "classifier" if model_folder is not None else None
    return own if own is not None and (own / WEIGHTS_FILE).is_file() else DEFAULT_FOLDER


def model_classifier(model_folder=None) -> AttributeClassifier:
    """The classifier that reads a model's images (classifier_folder: its own, else the default),
    loaded once per folder and version of its weights and shared (in eval mode: never train it).
    model_folder is LoadedModel.domain_folder; None is the default classifier."""
    folder = classifier_folder(model_folder)
    weights = folder / WEIGHTS_FILE
    return _cached_classifier(str(folder), weights.stat().st_mtime_ns if weights.is_file() else None)


@lru_cache(maxsize=4)
def _cached_classifier(folder: str, version: int | None) -> AttributeClassifier:
    return load_classifier(folder)


def load_classifier(folder=None) -> AttributeClassifier:
    """The classifier saved in folder (default assets/classifier), in eval mode."""
    folder = Path(folder) if folder is not None else DEFAULT_FOLDER
    weights, config_path = folder / WEIGHTS_FILE, folder / CONFIG_FILE
    missing = [p.name for p in (weights, config_path) if not p.is_file()]
    if missing:
        raise MedEditError(f"no attribute classifier in {folder}: missing {', '.join(missing)}; "
                           "train one with `python -m pipelines train classifier --out FOLDER`")
    raw = json.loads(config_path.read_text())
    try:
        config = ClassifierConfig(widths=raw.get("widths", ClassifierConfig.widths),
                                  norm=raw.get("norm", "batch"),
                                  input_size=raw.get("input_size", INPUT_SIZE),
                                  outputs=raw.get("outputs", OUTPUTS))
    except MedEditError as e:
        raise MedEditError(f"classifier in {folder} does not match this code: {e}") from None
    clf = AttributeClassifier(config)
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(weights).items()}
    try:
        clf.load_state_dict(state)
    except RuntimeError as e:
        raise MedEditError(f"classifier weights in {weights} do not match config.json: {e}") from None
    return clf.eval()


# ----------------------------------------------------------------------------- prediction

def prepare_images(images, size: int = INPUT_SIZE) -> torch.Tensor:
    """List/array of HxWx3 (or HxW) uint8 images of any size -> [B, 3, size, size] in [-1, 1]."""
    if isinstance(images, np.ndarray) and images.ndim in (2, 3):
        images = images[None]
    if len(images) == 0:
        raise MedEditError("classifier input: no images given")
    batch = []
    for i, image in enumerate(images):
        a = np.asarray(image)
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=2)
        if a.ndim != 3 or a.shape[2] not in (3, 4) or a.dtype != np.uint8:
            raise MedEditError(f"classifier input {i}: expected an HxWx3 uint8 image, got shape "
                               f"{a.shape} dtype {a.dtype}")
        a = a[..., :3]
        if a.shape[:2] != (size, size):
            a = np.asarray(Image.fromarray(np.ascontiguousarray(a)).resize(
                (size, size), Image.Resampling.BOX))
        batch.append(a)
    x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


@torch.no_grad()
def _run(clf: AttributeClassifier, images, fn) -> np.ndarray:
    x = prepare_images(images, clf.config.input_size)
    was_training = clf.training
    clf.eval()
    try:
        out = [fn(x[i:i + BATCH]) for i in range(0, len(x), BATCH)]
    finally:
        clf.train(was_training)
    return torch.cat(out).double().numpy()


def predict_probs(clf: AttributeClassifier, images) -> np.ndarray:
    """[B, 13 or 14] sigmoid probabilities, columns in clf.config.outputs order (OUTPUTS first)."""
    return _run(clf, images, lambda x: torch.sigmoid(clf(x)))


def lesion_column(probs: np.ndarray) -> np.ndarray | None:
    """The `lesion` column of predict_probs' answer, or None from a classifier without that output."""
    return probs[:, WITH_LESION.index(LESION)] if probs.shape[1] == len(WITH_LESION) else None


def lesion_probability(clf: AttributeClassifier, images) -> np.ndarray | None:
    """[B] probability that each image shows a lesion (meaningful on dermoscopy images), or None
    when the classifier has no lesion output."""
    return lesion_column(predict_probs(clf, images)) if clf.config.has_lesion else None

