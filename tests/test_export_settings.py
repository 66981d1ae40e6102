"""Exports carry every setting that made them, in words a person reads (the ZIP's README.txt and
the DICOM description, not only manifest.json), and the exported side-by-side is large enough to
read: each panel a nearest-neighbour enlargement of the true pixels."""

import io
import re
import zipfile

import numpy as np
import pydicom
from PIL import Image

from pipelines.export.archive import export_zip
from pipelines.export.dicom import dicom_series_bytes
from pipelines.export.images import READABLE_PANEL
from pipelines.export.provenance import provenance_from_settings

# What MedEditPipeline.series reports (editing/pipeline.py settings + the series' shape).
SERIES = {"model_id": "mededit-default", "model_revision": "0123abc", "anatomy": "Normal chest X-ray",
          "style": "PA view", "to_anatomy": "", "to_style": "PA view, with a pacemaker",
          "sliders": {"pacemaker": 1.25, "effusion": -0.5}, "swap_at": 0.3, "locality": 0.2, "swap_step": 6,
          "seed": 4, "steps": 20, "anatomy_scale": 3.5, "style_scale": 2.0,
          "frames": 3, "mode": "embedding", "control_points": 4, "bend": -0.25}
PHRASES = ("guidance anatomy 3.5, style 2", "swap step 6 of 20", "locality 0.2",
           "sliders effusion -0.5, pacemaker +1.25", "series embedding mode, 3 frames, 4 control points, bend -0.25")


def frames(n=3, size=64):
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), "L") for _ in range(n)]


def exported(settings, tmp_path):
    with zipfile.ZipFile(export_zip(frames(), provenance_from_settings(settings), None, tmp_path / "e.zip")) as z:
        return {name: z.read(name) for name in z.namelist()}


def test_the_readme_and_the_dicom_description_hold_every_setting(tmp_path):
    files = exported(SERIES, tmp_path)
    readme = " ".join(files["README.txt"].decode().split())  # the settings line wraps
    described = [pydicom.dcmread(io.BytesIO(data)).DerivationDescription
                 for name, data in files.items() if name.startswith("dicom/")]
    assert len(described) == 3
    for text in (readme, *described):
        for phrase in PHRASES:
            assert phrase in text, (phrase, text)
        assert re.search(r"seed:? +4", text, re.IGNORECASE) and "20 steps" in text


def test_an_uploads_export_says_its_inversion_refresh_and_terms(tmp_path):
    upload = {**SERIES, "source": "upload", "source_sha256": "f" * 64, "inversion": "edit-friendly inversion",
              "inversion_seed": 4, "refresh": 0.2, "terms": [{"name": "pacemaker", "weight": 1.25}]}
    readme = " ".join(exported(upload, tmp_path)["README.txt"].decode().split())
    for phrase in (*PHRASES, "inversion edit-friendly inversion, seed 4", "refresh 0.2", "edit terms pacemaker +1.25"):
        assert phrase in readme


def test_long_prompts_never_push_the_settings_out_of_the_dicom_description():
    long = {**SERIES, "anatomy": "x" * 400, "to_anatomy": "y" * 400, "style": "z" * 400, "to_style": "w" * 400}
    _, data = dicom_series_bytes(frames(1), provenance_from_settings(long))[0]
    described = pydicom.dcmread(io.BytesIO(data)).DerivationDescription
    assert len(described) <= 1024 and all(phrase in described for phrase in PHRASES)


def test_the_exported_side_by_side_is_readable_and_keeps_the_true_pixels(tmp_path):
    figure = Image.open(io.BytesIO(exported(SERIES, tmp_path)["side_by_side.png"]))
    assert figure.width >= 512 and figure.height >= READABLE_PANEL
    first = frames()[0].convert("RGB")
    factor = READABLE_PANEL // first.width
    big = np.asarray(first.resize((first.width * factor, first.height * factor), Image.NEAREST))
    found = np.asarray(figure.convert("RGB"))
    # the first panel, somewhere below the label: exactly the frame's pixels, each a 4x4 square
    rows = [y for y in range(found.shape[0] - big.shape[0] + 1)
            if np.array_equal(found[y:y + big.shape[0], :, :][:, 4:4 + big.shape[1]], big)]
    assert rows, "the first panel is not the nearest-neighbour enlargement of the first frame"
