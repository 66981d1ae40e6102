"""`python -m pipelines edit --image FILE [--edit-mask FILE] [--keep-mask FILE]`: an upload edited
end to end; no DICOM identifier reaches an output, the terminal or a file name; bad files are
refused in one line before torch or a model loads."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.cli import main
from pipelines.data.phantoms import phantom
from pipelines.editing.regions import unpack_mask
from pipelines.export.images import read_png_provenance
from tests.upload_files import dicom_bytes, dicom_dataset, identifiers, png_bomb, png_bytes

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ["--anatomy", "Normal chest X-ray with no significant findings", "--style", "PA view"]


def grey_phantom_dicom():
    image = phantom("cxr", 3, size=96).image[..., 0].astype(np.uint16) * 16  # 12 bits stored
    return dicom_dataset(image, WindowCenter=2040, WindowWidth=4080)


def test_an_uploaded_dicom_is_edited_and_none_of_its_identifiers_come_out(micro_model_folder, tmp_path, capsys):
    ds = grey_phantom_dicom()
    upload = tmp_path / "upload.dcm"
    upload.write_bytes(dicom_bytes(ds))
    keep = np.zeros((96, 96), np.uint8)
    keep[:30] = 255
    (tmp_path / "keep.png").write_bytes(png_bytes(keep))
    out = tmp_path / "out"
    rc = main(["edit", "--model", str(micro_model_folder), "--image", str(upload), *SOURCE,
               "--attribute", "pacemaker=1", "--steps", "5", "--keep-mask", str(tmp_path / "keep.png"),
               "--out", str(out)])
    terminal = capsys.readouterr()
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["edited.png", "metadata.json", "neutral.png",
                                                      "side_by_side.png"]
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["source_sha256"] == hashlib.sha256(upload.read_bytes()).hexdigest()
    assert meta["digital_source"] == "an image edited by a generative model" and "synthetic" not in meta
    assert unpack_mask(meta["regions"]["keep_mask"])[:20].all()
    record = read_png_provenance((out / "edited.png").read_bytes())
    assert record["extra"]["digital_source"] == "an image edited by a generative model"
    assert record["extra"]["source_sha256"] == meta["source_sha256"]
    assert record["digital_source_type"].endswith("/compositeWithTrainedAlgorithmicMedia")
    assert record["extra"]["image_sha256"] == meta["image_sha256"] and record["extra"]["regions"]
    everything = terminal.out + terminal.err + "".join(p.name for p in out.rglob("*"))
    blobs = [p.read_bytes() for p in out.rglob("*") if p.is_file()]
    for value in identifiers(ds):
        assert value not in everything and not any(value.encode() in blob for blob in blobs), value


def test_without_prompts_the_classifier_describes_the_upload(micro_model_folder, tmp_path, capsys):
    upload = tmp_path / "derm.png"
    upload.write_bytes(png_bytes(phantom("dermoscopy", 8, size=128, melanoma=False, hair=False).image))
    rc = main(["edit", "--model", str(micro_model_folder), "--image", str(upload), "--steps", "4",
               "--attribute", "hair=1", "--out", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    assert rc == 0 and "source prompts from the classifier" in printed
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert meta["anatomy"] == "a dermoscopic image with melanocytic nevus (NV)"
    assert "resized from 128x128 to 64x64" in meta["notes"]


BAD = [
    ("bomb.png", png_bomb(), [], "refused before decoding"),
    ("cut.png", png_bytes(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))[:900], [],
     "corrupt or truncated"),
    ("note.txt", b"hello", [], "not a PNG, JPEG or DICOM file"),
    ("ok.png", png_bytes(np.zeros((64, 64, 3), np.uint8)), ["--edit-mask", "{tmp}/none.png"],
     "--edit-mask image file"),
    ("ok.png", png_bytes(np.zeros((64, 64, 3), np.uint8)), ["--edit-mask", "{tmp}/empty.png"],
     "the edit mask is empty"),
    ("ok.png", png_bytes(np.zeros((64, 64, 3), np.uint8)), ["--swap-at", "2"], "swap point must be between"),
]


def test_bad_files_are_refused_in_one_line_before_torch_loads(tmp_path):
    """All cases in one fresh interpreter: 'torch was never imported' is a fact about it."""
    (tmp_path / "empty.png").write_bytes(png_bytes(np.zeros((64, 64), np.uint8)))
    cases = []
    for i, (name, data, extra, message) in enumerate(BAD):
        path = tmp_path / f"{i}-{name}"
        path.write_bytes(data)
        extra = [arg.replace("{tmp}", str(tmp_path)) for arg in extra]
        cases.append((["edit", "--image", str(path), *SOURCE, *extra, "--out", str(tmp_path / f"out{i}")],
                      message))
    script = (
        "import contextlib, io, json, sys\n"
        "from pipelines.cli import main\n"
        "results = []\n"
        "for argv, _ in json.loads(sys.argv[1]):\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        rc = main(argv)\n"
        "    results.append([rc, err.getvalue()])\n"
        "print(json.dumps({'results': results, 'torch': 'torch' in sys.modules}))\n")
    done = subprocess.run([sys.executable, "-c", script, json.dumps(cases)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    report = json.loads(done.stdout.splitlines()[-1])
    assert len(done.stdout.splitlines()) == 1, done.stdout
    assert not report["torch"]
    for (argv, message), (rc, err) in zip(cases, report["results"]):
        assert rc == 2 and err.count("\n") == 1 and message in err, (argv, err)
    assert not any(p.name.startswith("out") for p in tmp_path.iterdir())


@pytest.mark.parametrize("flag", ["--edit-mask", "--keep-mask"])
def test_a_mask_needs_an_image(tmp_path, flag, capsys):
    assert main(["edit", *SOURCE, flag, str(tmp_path / "m.png"), "--out", str(tmp_path / "o")]) == 2
    assert "need --image" in capsys.readouterr().err


def test_a_mask_of_another_size_is_refused_by_name(micro_model_folder, tmp_path, capsys):
    (tmp_path / "img.png").write_bytes(png_bytes(np.zeros((80, 80, 3), np.uint8)))
    (tmp_path / "mask.png").write_bytes(png_bytes(np.full((50, 50), 255, np.uint8)))
    rc = main(["edit", "--model", str(micro_model_folder), "--image", str(tmp_path / "img.png"), *SOURCE,
               "--edit-mask", str(tmp_path / "mask.png"), "--out", str(tmp_path / "o")])
    assert rc == 2 and "the edit mask is 50x50; it must be the image's size (80x80)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    Image.open(tmp_path / "img.png").close()
