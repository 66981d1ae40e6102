"""Dataset converters: CheXpert, ISIC 2019 (+ artifacts), any CSV -> imagefolder; and its validator."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from pipelines.data.converters import (from_chexpert, from_csv, from_isic2019, validate_imagefolder)
from pipelines.core.errors import MedEditError

CHEXPERT_HEADER = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", "No Finding",
                   "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
                   "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax",
                   "Pleural Effusion", "Pleural Other", "Fracture", "Support Devices"]
ISIC_HEADER = ["image", "MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK"]


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_png(path, seed=0, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (8, 8, 3) if mode == "RGB" else (8, 8)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)


def chexpert_row(path, view="Frontal", ap_pa="AP", **findings):
    row = {c: "" for c in CHEXPERT_HEADER}
    row.update({"Path": path, "Sex": "Female", "Age": "60", "Frontal/Lateral": view, "AP/PA": ap_pa})
    row.update({k.replace("_", " "): v for k, v in findings.items()})
    return [row[c] for c in CHEXPERT_HEADER]


@pytest.fixture
def chexpert(tmp_path):
    root = tmp_path / "chexpert"
    paths = [f"CheXpert-v1.0-small/train/patient0000{i}/study1/view1_frontal.jpg" for i in range(4)]
    for i, p in enumerate(paths):
        write_png(root / p, i, "L")  # a PNG named .jpg opens all the same
    rows = [
        chexpert_row(paths[0], Cardiomegaly="1.0", Pleural_Effusion="1.0", Support_Devices="1.0"),
        chexpert_row(paths[1], No_Finding="1.0", ap_pa="PA", Pneumothorax="0.0"),
        chexpert_row(paths[2], view="Lateral", ap_pa="", Lung_Opacity="-1.0", Edema="1.0"),
        chexpert_row(paths[3], Pleural_Other="1.0", Cardiomegaly="-1.0"),
    ]
    return write_csv(tmp_path / "train.csv", CHEXPERT_HEADER, rows), root


def test_chexpert_captions_and_labels(chexpert, tmp_path):
    csv_path, root = chexpert
    rows = from_chexpert(csv_path, root, tmp_path / "out")
    assert [r["anatomy"] for r in rows] == [
        "Chest X-ray showing pleural effusion, cardiomegaly",
        "Normal chest X-ray with no significant findings",
        "Chest X-ray showing edema",
        "Chest X-ray showing other pleural abnormality"]
    assert [r["style"] for r in rows] == ["support devices, AP view", "PA view", "lateral view",
                                          "AP view"]
    assert rows[0]["labels"] == {"effusion": 1, "cardiomegaly": 1, "opacity": 0, "support_devices": 1}
    assert rows[2]["labels"]["opacity"] == 0  # uncertain -> negative by default
    assert rows[0]["file_name"] == "CheXpert-v1.0-small/train/patient00000/study1/view1_frontal.jpg"
    assert validate_imagefolder(tmp_path / "out") == rows
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_chexpert_uncertain_policies(chexpert, tmp_path):
    csv_path, root = chexpert
    positive = from_chexpert(csv_path, root / "CheXpert-v1.0-small", tmp_path / "pos", "positive")
    assert positive[2]["anatomy"] == "Chest X-ray showing lung opacity, edema"
    assert positive[2]["labels"]["opacity"] == 1 and positive[3]["labels"]["cardiomegaly"] == 1
    assert positive[0]["file_name"] == "train/patient00000/study1/view1_frontal.jpg"
    ignored = from_chexpert(csv_path, root, tmp_path / "ign", "ignore")
    assert "opacity" not in ignored[2]["labels"] and ignored[2]["anatomy"] == "Chest X-ray showing edema"
    with pytest.raises(MedEditError, match="negative, positive, ignore"):
        from_chexpert(csv_path, root, tmp_path / "bad", "maybe")


def test_chexpert_missing_column_or_image_writes_nothing(chexpert, tmp_path):
    csv_path, root = chexpert
    lines = csv_path.read_text().splitlines()
    broken = tmp_path / "broken.csv"
    broken.write_text("\n".join([lines[0].replace("Pleural Effusion", "Effusion")] + lines[1:]))
    with pytest.raises(MedEditError, match="lacks column.*'Pleural Effusion'"):
        from_chexpert(broken, root, tmp_path / "out")
    (root / "CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg").unlink()
    with pytest.raises(MedEditError, match="1 of 4 images not found.*patient00002"):
        from_chexpert(csv_path, root, tmp_path / "out")
    bad_value = tmp_path / "value.csv"
    bad_value.write_text(csv_path.read_text().replace(",1.0,", ",yes,", 1))
    with pytest.raises(MedEditError, match="line 2, column .* 'yes'"):
        from_chexpert(bad_value, root, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.csv", "chexpert", "train.csv",
                                                          "value.csv"]


@pytest.fixture
def isic(tmp_path):
    root = tmp_path / "isic"
    names = ["ISIC_0000000", "ISIC_0000001", "ISIC_0000002"]
    for i, name in enumerate(names):
        write_png(root / f"{name}.jpg", i)
    onehot = [["1.0"] + ["0.0"] * 8, ["0.0", "1.0"] + ["0.0"] * 7, ["0.0"] * 7 + ["1.0", "0.0"]]
    gt = write_csv(tmp_path / "ISIC_2019_Training_GroundTruth.csv", ISIC_HEADER,
                   [[n, *o] for n, o in zip(names, onehot)])
    artifacts = write_csv(tmp_path / "isic_artifacts.csv",
                          ["image", "dark_corner", "hair", "gel_border", "gel_bubble", "ruler", "ink",
                           "patches"],
                          [["ISIC_0000000.jpg", 1, 1, 0, 0, 0, 0, 0],
                           ["ISIC_0000001", 0, 0, 0, 1, 1, 1, 0]])
    return gt, artifacts, root


def test_isic_captions_labels_and_artifacts(isic, tmp_path):
    gt, artifacts, root = isic
    plain = from_isic2019(gt, root, tmp_path / "plain")
    assert [r["anatomy"] for r in plain] == ["a dermoscopic image with melanoma (MEL)",
                                             "a dermoscopic image with melanocytic nevus (NV)",
                                             "a dermoscopic image with squamous cell carcinoma (SCC)"]
    assert [r["style"] for r in plain] == ["", "", ""]
    assert [r["labels"] for r in plain] == [{"melanoma": 1}, {"melanoma": 0}, {"melanoma": 0}]
    assert plain[0]["file_name"] == "ISIC_0000000.jpg"
    rows = from_isic2019(gt, root, tmp_path / "annotated", artifacts_csv=artifacts)
    assert rows[0]["style"] == "with hairs visible on skin, with a dark circular vignette"
    assert rows[1]["style"] == "showing gel bubbles, with a ruler visible, showing ink"
    assert rows[1]["labels"] == {"melanoma": 0, "hair": 0, "gel_bubbles": 1, "ruler": 1, "ink": 1,
                                 "vignette": 0}
    assert rows[2]["style"] == "" and rows[2]["labels"] == {"melanoma": 0}  # not annotated
    assert validate_imagefolder(tmp_path / "annotated") == rows


def test_isic_errors_write_nothing(isic, tmp_path):
    gt, artifacts, root = isic
    two = write_csv(tmp_path / "two.csv", ISIC_HEADER, [["ISIC_0000000", "1", "1"] + ["0"] * 7])
    with pytest.raises(MedEditError, match="exactly one diagnosis.*has 2"):
        from_isic2019(two, root, tmp_path / "out")
    no_artifact = write_csv(tmp_path / "none.csv", ["image", "patches"], [["ISIC_0000000", 1]])
    with pytest.raises(MedEditError, match="no artifact column; expected any of"):
        from_isic2019(gt, root, tmp_path / "out", artifacts_csv=no_artifact)
    (root / "ISIC_0000001.jpg").unlink()
    with pytest.raises(MedEditError, match="images not found.*ISIC_0000001"):
        from_isic2019(gt, root, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_generic_csv(tmp_path):
    for i in range(2):
        write_png(tmp_path / "imgs" / f"{i}.png", i)
    table = write_csv(tmp_path / "t.csv", ["img", "finding", "hair", "scanner"],
                      [["0.png", "a large nevus", "1", "dermlite"], ["1.png", "", "0", ""]])
    rows = from_csv(table, tmp_path / "imgs", tmp_path / "out", "img", ["finding"], ["hair", "scanner"])
    assert rows == [
        {"file_name": "0.png", "anatomy": "a large nevus", "style": "hair, dermlite", "labels": {"hair": 1}},
        {"file_name": "1.png", "anatomy": "", "style": "", "labels": {"hair": 0}}]
    with pytest.raises(MedEditError, match="lacks column.*'ruler'"):
        from_csv(table, tmp_path / "imgs", tmp_path / "out2", "img", ["finding"], ["ruler"])
    with pytest.raises(MedEditError, match="already exists"):
        from_csv(table, tmp_path / "imgs", tmp_path / "out", "img", ["finding"], [])
    escape = write_csv(tmp_path / "e.csv", ["img"], [["../t.csv"]])
    with pytest.raises(MedEditError, match="without '..'"):
        from_csv(escape, tmp_path / "imgs", tmp_path / "out3", "img", [], [])
    assert not (tmp_path / "out2").exists() and not (tmp_path / "out3").exists()


def test_validate_names_the_first_problems(tmp_path):
    with pytest.raises(MedEditError, match="metadata.jsonl is missing"):
        validate_imagefolder(tmp_path)
    write_png(tmp_path / "ok.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    lines = [{"file_name": "ok.png", "anatomy": "a", "style": ""},
             {"file_name": "gone.png", "anatomy": "a", "style": ""},
             {"file_name": "ok.png", "anatomy": "a"},
             {"file_name": "broken.png", "anatomy": "a", "style": ""}]
    (tmp_path / "metadata.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n{oops\n")
    with pytest.raises(MedEditError, match=r"4 problem\(s\).*line 2: image 'gone.png' not found; "
                                           r"line 3: missing style; line 4: 'broken.png' is not a "
                                           r"readable image.*line 5: not JSON"):
        validate_imagefolder(tmp_path)
