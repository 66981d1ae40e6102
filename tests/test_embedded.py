"""End to end on the shipped model: the CLI edits offline, and the edit adds what it was asked."""

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from pipelines.evaluation.classifier import OUTPUTS, load_classifier, predict_probs
from pipelines.export.images import read_png_provenance


def test_cli_edit_with_the_embedded_model_adds_a_pacemaker(tmp_path):
    out = tmp_path / "edit"
    done = subprocess.run(
        [sys.executable, "-m", "pipelines", "edit", "--anatomy",
         "Normal chest X-ray with no significant findings, normal heart size",
         "--style", "PA view, well exposed, low noise, no devices",
         "--to-style", "PA view, well exposed, low noise, with a pacemaker with leads",
         "--seed", "4", "--out", str(out)],
        capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    names = {p.name for p in out.iterdir()}
    assert names == {"neutral.png", "edited.png", "side_by_side.png", "metadata.json"}
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["model_id"] == "mededit-default" and meta["synthetic"]
    neutral, edited = (np.asarray(Image.open(out / n)) for n in ("neutral.png", "edited.png"))
    probs = predict_probs(load_classifier(), [neutral, edited])
    k = OUTPUTS.index("pacemaker")
    assert probs[1, k] > 0.5 > probs[0, k]
    assert read_png_provenance((out / "edited.png").read_bytes())["seed"] == 4


def test_local_edit_adds_effusion_and_changes_less_of_the_image():
    from pipelines.editing.pipeline import MedEditPipeline
    from pipelines.model.loading import load_model
    from pipelines.editing.requests import Edit, Sampling

    pipeline = MedEditPipeline(load_model("embedded"))  # not $MEDEDIT_MODEL, which app tests set
    s = Sampling("Normal chest X-ray with no significant findings, normal heart size",
                 "PA view, well exposed, low noise, no devices", seed=1)
    to = "Chest X-ray with a large pleural effusion on the right, normal heart size"
    local, free = (pipeline.edit(s, Edit(to_anatomy=to, locality=x)) for x in (0.3, 0.0))
    k = OUTPUTS.index("effusion")
    probs = predict_probs(load_classifier(), [local.neutral, local.edited])
    assert probs[1, k] > 0.5 > probs[0, k]
    changed = lambda r: np.abs(r.edited.astype(int) - r.neutral).mean()  # noqa: E731
    assert changed(local) < changed(free)
