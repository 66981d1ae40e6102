"""`python -m pipelines convert ...`: thin wrappers over pipelines/data/converters.py, one line on errors."""

import json

import numpy as np
import pytest
from PIL import Image

from pipelines.cli import main
from pipelines.data.converters import validate_imagefolder
from tests.test_datasets import CHEXPERT_HEADER, ISIC_HEADER, chexpert_row, write_csv


def png(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)


def test_convert_chexpert_with_uncertain_policy(tmp_path, capsys):
    paths = [f"train/patient{i}/study1/view1_frontal.png" for i in range(2)]
    for i, p in enumerate(paths):
        png(tmp_path / "images" / p, i)
    rows = [chexpert_row(paths[0], Pleural_Effusion="1.0", Support_Devices="-1.0"),
            chexpert_row(paths[1], No_Finding="1.0")]
    csv_path = write_csv(tmp_path / "train.csv", CHEXPERT_HEADER, rows)
    code = main(["convert", "chexpert", "--csv", str(csv_path), "--images", str(tmp_path / "images"),
                 "--out", str(tmp_path / "out"), "--uncertain", "positive", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 2 and report["positives"]["effusion"] == 1
    assert report["positives"]["support_devices"] == 1  # -1 read as positive
    assert validate_imagefolder(tmp_path / "out")[0]["style"].startswith("support devices")


def test_convert_isic_with_artifacts_and_validate(tmp_path, capsys):
    for i in range(2):
        png(tmp_path / "isic" / f"ISIC_{i:07d}.jpg", i)
    gt = write_csv(tmp_path / "gt.csv", ISIC_HEADER,
                   [["ISIC_0000000", 1, 0, 0, 0, 0, 0, 0, 0, 0], ["ISIC_0000001", 0, 1, 0, 0, 0, 0, 0, 0, 0]])
    artifacts = write_csv(tmp_path / "artifacts.csv", ["image", "hair", "ruler"],
                          [["ISIC_0000000", 1, 0], ["ISIC_0000001", 0, 1]])
    assert main(["convert", "isic2019", "--gt", str(gt), "--images", str(tmp_path / "isic"),
                 "--artifacts", str(artifacts), "--out", str(tmp_path / "out")]) == 0
    assert "2 images written" in capsys.readouterr().out
    assert main(["convert", "validate", str(tmp_path / "out"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["positives"] == {"hair": 1, "melanoma": 1, "ruler": 1}


def test_convert_any_csv(tmp_path, capsys):
    for i in range(2):
        png(tmp_path / "imgs" / f"{i}.png", i)
    table = write_csv(tmp_path / "table.csv", ["path", "finding", "pneumothorax", "device"],
                      [["0.png", "left lung", 1, "chest tube"], ["1.png", "right lung", 0, ""]])
    assert main(["convert", "csv", "--csv", str(table), "--images", str(tmp_path / "imgs"),
                 "--out", str(tmp_path / "out"), "--image-column", "path",
                 "--anatomy-columns", "finding", "pneumothorax", "--style-columns", "device"]) == 0
    rows = validate_imagefolder(tmp_path / "out")
    assert rows[0]["anatomy"] == "left lung, pneumothorax" and rows[0]["style"] == "chest tube"
    assert rows[0]["labels"] == {"pneumothorax": 1}


@pytest.mark.parametrize("argv, message", [
    (["convert", "validate", "{tmp}"], "metadata.jsonl is missing"),
    (["convert", "csv", "--csv", "{tmp}/none.csv", "--images", "{tmp}", "--out", "{tmp}/o",
      "--image-column", "p", "--anatomy-columns", "a"], "does not exist"),
    (["convert", "csv", "--csv", "{tmp}/none.csv", "--images", "{tmp}", "--out", "{tmp}/o",
      "--image-column", "p"], "--anatomy-columns and/or --style-columns"),
])
def test_convert_errors_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
