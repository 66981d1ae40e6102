"""Procedural phantoms: determinism, labels, masks, counterfactual locality, captions, CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipelines.data.attributes import attributes_of
from pipelines.core.errors import MedEditError
from pipelines.data.phantoms import (CHANGE_REGION, FACTOR_CHOICES, Phantom, caption, phantom, render,
                                sample_factors)

REPO = Path(__file__).resolve().parents[1]
MODALITIES = ("dermoscopy", "cxr")
SIZE = 64
BINARY = [(m, a.name) for m in MODALITIES for a in attributes_of(m)]


@pytest.mark.parametrize("modality", MODALITIES)
def test_deterministic_by_seed_and_shapes(modality):
    a, b, c = phantom(modality, 5, SIZE), phantom(modality, 5, SIZE), phantom(modality, 6, SIZE)
    assert isinstance(a, Phantom)
    assert a.image.shape == (SIZE, SIZE, 3) and a.image.dtype == np.uint8
    assert np.array_equal(a.image, b.image) and (a.anatomy, a.style) == (b.anatomy, b.style)
    assert not np.array_equal(a.image, c.image)
    assert sample_factors(modality, 5) == sample_factors(modality, 5)
    for mask in a.masks.values():
        assert mask.shape == (SIZE, SIZE) and mask.dtype == bool
    if modality == "cxr":  # grey shown as RGB
        assert np.array_equal(a.image[..., 0], a.image[..., 1])


@pytest.mark.parametrize("modality", MODALITIES)
def test_labels_match_factors_and_masks(modality):
    names = [a.name for a in attributes_of(modality)]
    for seed in range(8):
        p = phantom(modality, seed, 48)
        assert list(p.labels) == names  # registry order
        assert set(p.factors) == set(FACTOR_CHOICES[modality])
        for name in names:
            assert p.labels[name] == int(p.factors[name])
            assert p.masks[name].any() == bool(p.factors[name]), (seed, name)


@pytest.mark.parametrize("modality,name", BINARY)
def test_counterfactual_changes_only_the_factor_mask(modality, name):
    """Same seed, one attribute toggled: every changed pixel lies in that attribute's mask (for
    melanoma the lesion, for cardiomegaly the heart, of either render). Tolerance: none."""
    for seed in (0, 1, 2):
        off = phantom(modality, seed, SIZE, **{name: False})
        on = phantom(modality, seed, SIZE, **{name: True})
        changed = np.any(off.image != on.image, axis=2)
        region = on.masks[name] | off.masks[name]
        if name in CHANGE_REGION:
            region |= on.masks[CHANGE_REGION[name]] | off.masks[CHANGE_REGION[name]]
        assert changed.any(), (seed, name)
        assert not (changed & ~region).any(), (seed, name, int((changed & ~region).sum()))
        assert off.masks[name].sum() == 0 and on.masks[name].sum() > 0
        # Only this factor's label moved.
        assert {k: v for k, v in off.labels.items() if k != name} == {k: v for k, v in on.labels.items() if k != name}


@pytest.mark.parametrize("modality,name", BINARY)
def test_caption_has_phrase_iff_attribute_on(modality, name):
    attr = {a.name: a for a in attributes_of(modality)}[name]
    for seed in range(6):
        for value in (False, True):
            p = phantom(modality, seed, 32, **{name: value})
            text = p.anatomy if attr.channel == "anatomy" else p.style
            other = p.style if attr.channel == "anatomy" else p.anatomy
            assert (attr.phrase in text) == value, (seed, value, text)
            assert attr.phrase not in other
            assert len(p.anatomy.split()) <= 32 and len(p.style.split()) <= 32


@pytest.mark.parametrize("modality", MODALITIES)
def test_caption_wording_varies_by_seed(modality):
    f = sample_factors(modality, 0)
    anatomies = {caption(modality, f, seed)[0] for seed in range(20)}
    styles = {caption(modality, f, seed)[1] for seed in range(20)}
    assert len(anatomies) >= 3 and len(styles) >= 3


def test_seed_paper_phrasings():
    texts = set()
    for seed in range(60):
        for m in MODALITIES:
            p = phantom(m, seed, 32)
            texts.add(p.anatomy)
            texts.add(p.style)
    blob = "\n".join(texts)
    for phrase in ("a dermoscopic image with melanoma (MEL)", "a dermoscopic image with melanocytic nevus (NV)",
                   "Chest X-ray showing pleural effusion", "Normal chest X-ray with no significant findings",
                   "support devices"):
        assert phrase in blob, phrase


def test_validation_errors_name_choices():
    with pytest.raises(MedEditError, match="dermoscopy, cxr"):
        phantom("mri", 0)
    with pytest.raises(MedEditError, match="unknown factor 'wings'.*melanoma"):
        phantom("dermoscopy", 0, wings=True)
    with pytest.raises(MedEditError, match="'left', 'right', 'both'"):
        phantom("cxr", 0, effusion_side="middle")
    with pytest.raises(MedEditError, match=r"\[0.0, 1.0\]"):
        phantom("dermoscopy", 0, skin_tone=1.5)
    with pytest.raises(MedEditError, match="32 to 512"):
        phantom("cxr", 0, size=16)
    with pytest.raises(MedEditError):
        render("cxr", {"marker": "yes"}, 0)


def test_overrides_and_sizes():
    p = phantom("cxr", 3, 32, view="AP", exposure=1.2, marker=True)
    assert p.factors["view"] == "AP" and p.factors["exposure"] == 1.2 and p.labels["marker"] == 1
    assert phantom("dermoscopy", 3, 200).image.shape == (200, 200, 3)


def _cli(*args, cwd=REPO):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "pipelines", "phantoms", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_writes_imagefolder(tmp_path):
    out = tmp_path / "derm"
    r = _cli("--modality", "dermoscopy", "--n", "3", "--seed", "7", "--out", str(out), "--size", "48")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and [d["seed"] for d in lines] == [7, 8, 9]
    for d in lines:
        assert (out / d["file_name"]).is_file()
        assert set(d) >= {"file_name", "anatomy", "style", "labels", "factors"}
        assert d["labels"] == phantom("dermoscopy", d["seed"], 48).labels
    from PIL import Image
    img = Image.open(out / lines[0]["file_name"])
    assert img.size == (48, 48) and "synthetic" in img.info.get("Description", "")
    assert np.array_equal(np.asarray(img.convert("RGB")), phantom("dermoscopy", 7, 48).image)  # lossless


@pytest.mark.parametrize("args,message", [
    (["--modality", "pet", "--n", "2"], "dermoscopy, cxr"),
    (["--modality", "cxr", "--n", "0"], "positive"),
    (["--modality", "cxr", "--n", "2", "--size", "8"], "32 to 512"),
])
def test_cli_rejects_bad_input(tmp_path, args, message):
    out = tmp_path / "out"
    r = _cli(*args, "--out", str(out))
    assert r.returncode != 0 and message in r.stderr
    assert "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_cli_rejects_non_empty_output(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    r = _cli("--modality", "cxr", "--n", "2", "--out", str(out))
    assert r.returncode != 0 and "not empty" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and [p.name for p in out.iterdir()] == ["keep.txt"]
