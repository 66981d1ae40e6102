"""What produced an image, in a form every exported file carries (PNG tEXt, GIF comment, WebP
EXIF, DICOM header, the ZIP's manifest), with its mark and IPTC's digital source type (PNG and
WebP XMP, the DICOM derivation description): a model's image is marked synthetic
(SYNTHETIC_MARK); an image the user brought, which a model edited, is marked edited (EDITED_MARK)
and never synthetic, and carries its file's sha256 and the edit's masks, nothing else of it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pipelines.core.errors import MedEditError
from pipelines.core.limits import EDITED_MARK, SOFTWARE, SYNTHETIC_MARK
from pipelines.data.attributes import check_modality, modality_of
from pipelines.data.burned_in import BURNED_IN_KEY

IPTC_SOURCE_TYPES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
# Provenance.source -> IPTC digital source type (NewsCodes URI)
DIGITAL_SOURCE_TYPES = {
    "generated": IPTC_SOURCE_TYPES + "trainedAlgorithmicMedia",  # made by the model from prompts and noise
    "upload": IPTC_SOURCE_TYPES + "compositeWithTrainedAlgorithmicMedia",  # a brought image, edited
}
# Provenance.source -> (the record's key for its mark, the mark every file says in words)
MARKS = {"generated": ("synthetic", SYNTHETIC_MARK), "upload": ("edited", EDITED_MARK)}


@dataclass
class Provenance:
    """What produced an image; embedded in every exported file."""
    model_id: str
    model_revision: str
    modality: str  # "dermoscopy" | "cxr"
    anatomy: str
    style: str
    to_anatomy: str
    to_style: str
    seed: int
    swap_at: float  # fraction of the denoising steps after which the target prompts take over
    steps: int
    extra: dict = field(default_factory=dict)  # sliders, guidance, frame index/t...
    source: str = "generated"  # or "upload": an image the user brought, edited (DIGITAL_SOURCE_TYPES)

    def validate(self) -> "Provenance":
        check_modality(self.modality)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise MedEditError(f"seed must be an integer, got {self.seed!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, (int, np.integer)) or self.steps < 1:
            raise MedEditError(f"steps must be a positive integer, got {self.steps!r}")
        try:
            swap = float(self.swap_at)
        except (TypeError, ValueError):
            raise MedEditError(f"swap_at must be a number in [0, 1], got {self.swap_at!r}") from None
        if not 0.0 <= swap <= 1.0:
            raise MedEditError(f"swap_at must be in [0, 1], got {self.swap_at!r}")
        if not isinstance(self.source, str) or self.source not in DIGITAL_SOURCE_TYPES:
            raise MedEditError(f"provenance source must be one of {', '.join(DIGITAL_SOURCE_TYPES)}, "
                               f"got {self.source!r}")
        if not isinstance(self.extra, dict):
            raise MedEditError(f"provenance extra must be a dict, got {type(self.extra).__name__}")
        to_json(self.extra)  # fails early on values JSON cannot hold
        return self

    def as_dict(self) -> dict:
        return json.loads(to_json(asdict(self)))  # plain JSON types (numpy scalars become Python)

    @property
    def digital_source_type(self) -> str:
        return DIGITAL_SOURCE_TYPES[self.source]

    @property
    def mark(self) -> str:
        return MARKS[self.source][1]


def burned_in(record: dict) -> bool:
    """Whether a provenance record says its source's pixels may show identifying text."""
    return (record.get("extra") or {}).get(BURNED_IN_KEY) == "YES"


def mark_of(record: dict) -> str:
    """The mark a provenance record (provenance_record) says: synthetic, or edited."""
    return MARKS[record.get("source", "generated")][1]


def _plain(value):
    """json.dumps hook: numpy scalars/arrays and paths become plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(data, indent: int | None = None) -> str:
    """ASCII JSON (tEXt chunks are Latin-1 and DICOM text is ASCII by default)."""
    try:
        return json.dumps(data, default=_plain, ensure_ascii=True, indent=indent, sort_keys=indent is not None)
    except (TypeError, ValueError) as error:
        raise MedEditError(f"provenance cannot be written as JSON: {error}") from None


def provenance_record(provenance: Provenance | None, extra: dict | None = None) -> dict:
    """The dict embedded in one file: provenance, with per-file extras merged into 'extra'."""
    record = provenance.validate().as_dict() if provenance is not None else {"extra": {}}
    if extra:
        record["extra"] = {**record["extra"], **json.loads(to_json(extra))}
    key, mark = MARKS[record.get("source", "generated")]
    record["digital_source_type"] = DIGITAL_SOURCE_TYPES[record.get("source", "generated")]
    record[key] = mark
    record["software"] = SOFTWARE
    return record


# What an edit of a brought image adds to its settings (editing/uploaded.py): which image (the
# pixels' sha256, and the file's when the caller read a file), how inverted, how much of the end
# of the run had fresh noise, the masks' record, and "burned_in_annotation": "YES" when the file's
# pixels may show identifying text and the caller accepted it (data/burned_in.py), and the domain
# check's verdict (evaluation/domain.py: in the model's world, unlike it, or refused and edited anyway).
UPLOAD_KEYS = ("source_sha256", "image_sha256", "inversion", "inversion_seed", "refresh", "terms", "regions",
               BURNED_IN_KEY, "domain")


# What a series adds to its settings (editing/pipeline.py): its shape, so every export says it.
SERIES_KEYS = ("frames", "mode", "control_points", "bend")


def provenance_from_settings(settings: dict) -> Provenance:
    """The provenance of an edit or series from the settings MedEditPipeline reports; an upload's
    ("source": "upload") with its UPLOAD_KEYS, the file's sha256 included when the caller added it
    to the settings as "source_sha256"."""
    extra = {k: settings[k] for k in ("sliders", "anatomy_scale", "style_scale", "swap_step", "locality")}
    extra.update({k: settings[k] for k in SERIES_KEYS if k in settings})
    source = "upload" if settings.get("source") == "upload" else "generated"
    if source == "upload":
        extra.update({k: settings[k] for k in UPLOAD_KEYS if k in settings})
    return Provenance(settings["model_id"], settings["model_revision"],
                      modality_of(settings["anatomy"], settings["style"], settings["to_anatomy"]),
                      settings["anatomy"], settings["style"], settings["to_anatomy"],
                      settings["to_style"], settings["seed"], settings["swap_at"], settings["steps"],
                      extra, source=source)
