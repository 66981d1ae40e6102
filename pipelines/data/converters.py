"""Bring-your-own data: public label tables to the imagefolder layout that training reads.

Output: `out_dir/metadata.jsonl`, one JSON object a line with `file_name` (relative to out_dir),
`anatomy` and `style` captions (the two conditioning channels) and `labels` (registry attribute
names of pipelines/attributes.py -> 0/1, only where the source says so), and the images beside it.
Every converter reads and checks the whole table and finds every image before it writes anything;
the folder is written under a temporary name and renamed at the end, so it is whole or absent.
Images are hard-linked where the file system allows, else copied, and keep their format.
"""

import csv
import json
import os
import shutil
from collections import Counter
from pathlib import Path, PurePosixPath

from PIL import Image

from pipelines.data.attributes import get_attribute
from pipelines.core.errors import MedEditError
from pipelines.core.files import atomic_folder

METADATA = "metadata.jsonl"
REQUIRED_KEYS = ("file_name", "anatomy", "style")
SHOWN = 5  # problems named in one message

# CheXpert: the observation columns, in the CSV's order.
CHEXPERT_FINDINGS = ("Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
                     "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax",
                     "Pleural Effusion", "Pleural Other", "Fracture")
CHEXPERT_COLUMNS = ("Path", "Frontal/Lateral", "AP/PA", "No Finding", *CHEXPERT_FINDINGS,
                    "Support Devices")
CHEXPERT_TO_REGISTRY = {"Pleural Effusion": "effusion", "Cardiomegaly": "cardiomegaly",
                        "Lung Opacity": "opacity", "Support Devices": "support_devices"}
CHEXPERT_PHRASES = {"Pleural Other": "other pleural abnormality"}  # the rest: lower-cased name
UNCERTAIN_POLICIES = {"negative": 0.0, "positive": 1.0, "ignore": None}
NORMAL_CXR = "Normal chest X-ray with no significant findings"

# ISIC 2019: one-hot diagnosis columns; UNK is absent from some releases.
ISIC_CLASSES = {"MEL": "melanoma", "NV": "melanocytic nevus", "BCC": "basal cell carcinoma",
                "AK": "actinic keratosis", "BKL": "benign keratosis", "DF": "dermatofibroma",
                "VASC": "vascular lesion", "SCC": "squamous cell carcinoma",
                "UNK": "an unknown lesion type"}
# Artifact annotation columns (Bissoto et al. and variants) -> registry attribute.
ISIC_ARTIFACTS = {"hair": ("hair",), "gel_bubbles": ("gel_bubbles", "gel_bubble", "gel_border"),
                  "ruler": ("ruler",), "ink": ("ink",), "vignette": ("vignette", "dark_corner")}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


# ---------------------------------------------------------------- reading and checking tables

def _read_csv(path: Path, what: str) -> tuple[list[str], list[dict[str, str]]]:
    path = Path(path)
    if not path.is_file():
        raise MedEditError(f"{what} '{path}' does not exist")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
                for row in reader]
    if not rows:
        raise MedEditError(f"{what} '{path}' has no data rows")
    return columns, rows


def _require_columns(path: Path, columns: list[str], required) -> None:
    missing = [c for c in required if c not in columns]
    if missing:
        raise MedEditError(f"'{path}' lacks column(s) {', '.join(map(repr, missing))}; "
                           f"it has: {', '.join(map(repr, columns))}")


def _number(value: str, where: str, allowed=(0.0, 1.0)) -> float | None:
    """'' -> None; '1', '1.0', 'true' -> 1.0, ...; anything outside `allowed` -> MedEditError."""
    if value == "":
        return None
    text = value.lower()
    number = {"true": 1.0, "false": 0.0}.get(text)
    if number is None:
        try:
            number = float(text)
        except ValueError:
            number = float("nan")
    if number not in allowed:
        raise MedEditError(f"{where}: value {value!r} is not one of "
                           f"{', '.join(str(a) for a in allowed)} (or empty)")
    return number


def _relative(name: str, where: str) -> PurePosixPath:
    """A path from a table, kept inside the dataset folder."""
    path = PurePosixPath(name.replace("\\", "/"))
    if not name or path.is_absolute() or ".." in path.parts:
        raise MedEditError(f"{where}: image path {name!r} must be relative, without '..'")
    return path


def _locate(root: Path, path: PurePosixPath, suffixes=("",)) -> tuple[Path, PurePosixPath] | None:
    """The file for `path` under root; also tries without the path's first folder (CheXpert's
    'CheXpert-v1.0-small/train/...' when root already is that folder)."""
    candidates = [path]
    if len(path.parts) > 1:
        candidates.append(PurePosixPath(*path.parts[1:]))
    for candidate in candidates:
        for suffix in suffixes:
            named = candidate.with_name(candidate.name + suffix)
            if (root / named).is_file():
                return root / named, named
    return None


def _raise_missing(missing: list[str], total: int, root: Path) -> None:
    if missing:
        shown = ", ".join(missing[:SHOWN]) + (", ..." if len(missing) > SHOWN else "")
        raise MedEditError(f"{len(missing)} of {total} images not found under '{root}': {shown}")


# ---------------------------------------------------------------- writing the folder atomically

def _check_out_dir(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise MedEditError(f"output '{out_dir}' already exists; choose a new folder or remove it")
    return out_dir


def _place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)  # no second copy of a large dataset where the disk allows
    except OSError:
        shutil.copy2(source, target)


def _write_imagefolder(out_dir: Path, items: list[tuple[Path, dict]]) -> list[dict]:
    """Write (source image, metadata row) pairs to out_dir: whole, or nothing at all."""
    out_dir = _check_out_dir(out_dir)
    counts = Counter(row["file_name"] for _, row in items)
    duplicates = sorted(name for name, n in counts.items() if n > 1)
    if duplicates:
        raise MedEditError(f"several rows name the same image: {', '.join(duplicates[:SHOWN])}")
    with atomic_folder(out_dir) as temp:
        for source, row in items:
            _place(source, temp / row["file_name"])
        with (temp / METADATA).open("w", encoding="utf-8") as f:
            for _, row in items:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return [row for _, row in items]


# ---------------------------------------------------------------- CheXpert

def chexpert_row(row: dict[str, str], where: str, policy_uncertain: str = "negative") -> dict:
    """Captions and labels of one CheXpert row (file_name left to the caller)."""
    uncertain = UNCERTAIN_POLICIES[policy_uncertain]

    def value(column):  # 1.0, 0.0 or None (uncertain under 'ignore'); empty = not mentioned = 0
        number = _number(row[column], f"{where}, column {column!r}", allowed=(0.0, 1.0, -1.0))
        if number is None:
            return 0.0
        return uncertain if number == -1.0 else number

    values = {c: value(c) for c in (*CHEXPERT_FINDINGS, "Support Devices")}
    registry_first = [c for c in CHEXPERT_TO_REGISTRY if c in CHEXPERT_FINDINGS]
    ordered = registry_first + [c for c in CHEXPERT_FINDINGS if c not in registry_first]
    findings = [CHEXPERT_PHRASES.get(c, c.lower()) for c in ordered if values[c] == 1.0]
    anatomy = "Chest X-ray showing " + ", ".join(findings) if findings else NORMAL_CXR

    style = ["support devices"] if values["Support Devices"] == 1.0 else []
    if row["Frontal/Lateral"].lower() == "lateral":
        style.append("lateral view")
    elif row["AP/PA"].upper() in ("AP", "PA"):
        style.append(f"{row['AP/PA'].upper()} view")
    else:
        style.append("frontal view")
    labels = {name: int(values[column]) for column, name in CHEXPERT_TO_REGISTRY.items()
              if values[column] is not None}
    return {"anatomy": anatomy, "style": ", ".join(style), "labels": labels}


def from_chexpert(csv_path, image_root, out_dir, policy_uncertain: str = "negative") -> list[dict]:
    """CheXpert's train.csv/valid.csv and its images -> imagefolder at out_dir.

    policy_uncertain: what -1.0 (uncertain) means: 'negative', 'positive', or 'ignore' (left out of
    the caption and the labels). Empty cells (not mentioned) are negative.
    """
    if policy_uncertain not in UNCERTAIN_POLICIES:
        raise MedEditError(f"unknown policy_uncertain {policy_uncertain!r}; choose one of: "
                           f"{', '.join(UNCERTAIN_POLICIES)}")
    csv_path, image_root = Path(csv_path), Path(image_root)
    columns, rows = _read_csv(csv_path, "CheXpert label CSV")
    _require_columns(csv_path, columns, CHEXPERT_COLUMNS)
    items, missing = [], []
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        where = f"'{csv_path.name}' line {i}"
        found = _locate(image_root, _relative(row["Path"], where))
        entry = chexpert_row(row, where, policy_uncertain)
        if found is None:
            missing.append(row["Path"])
            continue
        items.append((found[0], {"file_name": str(found[1]), **entry}))
    _raise_missing(missing, len(rows), image_root)
    return _write_imagefolder(Path(out_dir), items)


# ---------------------------------------------------------------- ISIC 2019

def _isic_id(name: str) -> str:
    path = PurePosixPath(name)
    return path.stem if path.suffix.lower() in IMAGE_SUFFIXES else name


def read_isic_artifacts(csv_path) -> dict[str, dict[str, int]]:
    """Image id -> {registry artifact name: 0/1} from an artifact annotation CSV."""
    csv_path = Path(csv_path)
    columns, rows = _read_csv(csv_path, "artifact annotation CSV")
    _require_columns(csv_path, columns, ["image"])
    present = {name: [a for a in aliases if a in columns] for name, aliases in ISIC_ARTIFACTS.items()}
    present = {name: aliases for name, aliases in present.items() if aliases}
    if not present:
        known = sorted(a for aliases in ISIC_ARTIFACTS.values() for a in aliases)
        raise MedEditError(f"'{csv_path}' has no artifact column; expected any of: {', '.join(known)}")
    artifacts = {}
    for i, row in enumerate(rows, start=2):
        where = f"'{csv_path.name}' line {i}"
        artifacts[_isic_id(row["image"])] = {
            name: int(any(_number(row[a], f"{where}, column {a!r}") == 1.0 for a in aliases))
            for name, aliases in present.items()}
    return artifacts


def from_isic2019(gt_csv, image_root, out_dir, artifacts_csv=None) -> list[dict]:
    """ISIC 2019 ground truth (+ optional artifact annotations) and images -> imagefolder.

    Anatomy: "a dermoscopic image with melanoma (MEL)" etc.; style: the registry phrases of the
    annotated artifacts ("" without annotations); labels: melanoma, and each annotated artifact.
    """
    gt_csv, image_root = Path(gt_csv), Path(image_root)
    columns, rows = _read_csv(gt_csv, "ISIC ground-truth CSV")
    classes = [c for c in ISIC_CLASSES if c != "UNK" or "UNK" in columns]
    _require_columns(gt_csv, columns, ["image", *classes])
    artifacts = read_isic_artifacts(artifacts_csv) if artifacts_csv is not None else {}
    items, missing = [], []
    for i, row in enumerate(rows, start=2):
        where = f"'{gt_csv.name}' line {i}"
        positive = [c for c in classes if _number(row[c], f"{where}, column {c!r}") == 1.0]
        if len(positive) != 1:
            raise MedEditError(f"{where}: image {row['image']!r} needs exactly one diagnosis among "
                               f"{', '.join(classes)}; it has {len(positive)}")
        label = positive[0]
        found = _locate(image_root, _relative(row["image"], where), ("", *IMAGE_SUFFIXES))
        if found is None:
            missing.append(row["image"])
            continue
        flags = artifacts.get(_isic_id(row["image"]), {})
        style = [get_attribute(name).phrase for name in ISIC_ARTIFACTS if flags.get(name)]
        items.append((found[0], {
            "file_name": str(found[1]),
            "anatomy": f"a dermoscopic image with {ISIC_CLASSES[label]} ({label})",
            "style": ", ".join(style),
            "labels": {"melanoma": int(label == "MEL"), **flags},
            "diagnosis": label}))
    _raise_missing(missing, len(rows), image_root)
    return _write_imagefolder(Path(out_dir), items)


# ---------------------------------------------------------------- any CSV

def _is_binary(rows, column) -> bool:
    try:
        return all(_number(r[column], "") is not None or r[column] == "" for r in rows)
    except MedEditError:
        return False


def from_csv(csv_path, image_root, out_dir, image_column: str, anatomy_columns, style_columns
             ) -> list[dict]:
    """Any table of images -> imagefolder. A text column adds its value to its channel's caption;
    a 0/1 column adds its name (underscores as spaces) where it is 1 and becomes a label."""
    csv_path, image_root = Path(csv_path), Path(image_root)
    anatomy_columns, style_columns = list(anatomy_columns), list(style_columns)
    columns, rows = _read_csv(csv_path, "CSV")
    _require_columns(csv_path, columns, [image_column, *anatomy_columns, *style_columns])
    binary = {c for c in (*anatomy_columns, *style_columns) if _is_binary(rows, c)}

    def caption(row, channel_columns):
        parts = []
        for column in channel_columns:
            if column in binary:
                if _number(row[column], "") == 1.0:
                    parts.append(column.replace("_", " "))
            elif row[column]:
                parts.append(row[column])
        return ", ".join(parts)

    items, missing = [], []
    for i, row in enumerate(rows, start=2):
        where = f"'{csv_path.name}' line {i}"
        found = _locate(image_root, _relative(row[image_column], where))
        if found is None:
            missing.append(row[image_column])
            continue
        labels = {c: int(_number(row[c], "") or 0) for c in (*anatomy_columns, *style_columns)
                  if c in binary}
        items.append((found[0], {"file_name": str(found[1]), "anatomy": caption(row, anatomy_columns),
                                 "style": caption(row, style_columns), "labels": labels}))
    _raise_missing(missing, len(rows), image_root)
    return _write_imagefolder(Path(out_dir), items)


# ---------------------------------------------------------------- checking a folder

def validate_imagefolder(folder) -> list[dict]:
    """The rows of folder/metadata.jsonl, after checking every row and that every image opens."""
    folder = Path(folder)
    metadata = folder / METADATA
    if not metadata.is_file():
        raise MedEditError(f"'{folder}' is not an imagefolder dataset: {METADATA} is missing")
    rows, problems = [], []
    with metadata.open(encoding="utf-8") as f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                problems.append(f"line {i}: not JSON")
                continue
            if not isinstance(row, dict):
                problems.append(f"line {i}: not a JSON object")
                continue
            lacking = [k for k in REQUIRED_KEYS if k not in row]
            if lacking:
                problems.append(f"line {i}: missing {', '.join(lacking)}")
                continue
            if not all(isinstance(row[k], str) for k in REQUIRED_KEYS):
                problems.append(f"line {i}: file_name, anatomy and style must be text")
                continue
            try:
                path = folder / _relative(row["file_name"], f"line {i}")
            except MedEditError as error:
                problems.append(str(error))
                continue
            if not path.is_file():
                problems.append(f"line {i}: image '{row['file_name']}' not found")
                continue
            try:
                with Image.open(path) as image:
                    image.verify()
            except Exception as error:  # PIL raises many kinds for a broken file
                problems.append(f"line {i}: '{row['file_name']}' is not a readable image "
                                f"({type(error).__name__})")
                continue
            rows.append(row)
    if problems:
        shown = "; ".join(problems[:SHOWN]) + ("; ..." if len(problems) > SHOWN else "")
        raise MedEditError(f"{len(problems)} problem(s) in '{metadata}': {shown}")
    if not rows:
        raise MedEditError(f"'{metadata}' has no rows")
    return rows
