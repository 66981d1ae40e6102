"""The domain check (pipelines/evaluation/domain.py): the shipped statistics tell the model's world
from other modalities, photographs, documents and noise built at test time; refused images are
edited only when asked to, and every output says so; describe never reads a refused image with
confidence; fitting writes statistics a check reads back."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.data.data_manager import DATA_ROOT

from pipelines.cli import main
from pipelines.data.phantoms import phantom
from pipelines.data.uploads import read_image
from pipelines.evaluation.classifier import load_classifier
from pipelines.evaluation.describe import describe
from pipelines.evaluation.domain import (DOMAIN_FOLDER, DomainRefused, folder_check, gate, load_domain,
                                         load_domain_check, save_domain)
from pipelines.evaluation.domain_eval import TARGETS, auroc, evaluate_domain
from pipelines.evaluation.domain_fit import fit_domain, phantom_sets
from pipelines.evaluation.domain_limits import NEAR_MARGIN, NEAR_QUANTILE, WARNED_QUANTILE, refuse_limit
from pipelines.evaluation.domain_sets import NEAR_COPY, out_of_domain, thumbnail
from pipelines.export.images import read_png_provenance
from pipelines.model.embedded import EMBEDDED_FOLDER

CT = Path(DATA_ROOT, "test_files", "CT_small.dcm")  # a CT slice that ships with pydicom
SOURCE = ["--anatomy", "Normal chest X-ray with no significant findings", "--style", "PA view"]


@pytest.fixture(scope="module")
def check():
    return load_domain_check("embedded")


def test_the_shipped_check_meets_its_targets_on_a_small_held_out_set(check):
    report = evaluate_domain(check, n_in=90, n_near=16, n_generated=1)
    assert report["images"]["out"] >= 30  # the held-out half of pydicom's DICOMs and packaged photographs, generated
    assert report["auroc_in_vs_out"] >= TARGETS["auroc"]
    assert report["out_refused"] >= TARGETS["out_refused"], report["out_not_refused"]
    assert report["in_flagged"] <= TARGETS["in_flagged"]
    for kind in ("dicom:CT", "dicom:MR", "dicom:US", "dicom:CR"):  # in the held-out half
        assert report["kinds"][kind]["refused"] == 1.0, kind
    for variant in ("upside_down", "inverted"):  # chest X-rays no scanner makes
        assert report["kinds"][f"near:cxr:{variant}"]["refused"] == 1.0
    assert report["known_modality"]["images"] == 16  # phantoms shifted far: most warned, not refused
    assert report["known_modality"]["refused"] <= TARGETS["known_refused"], report["kinds"]


def test_a_chest_x_ray_phantom_shifted_far_is_warned_not_refused(check):
    """Contrast halved, gamma 2, turned 15 degrees: further than anything the fit saw, still a chest
    X-ray. With `refuse` set on the fit's own shifts, this phantom at contrast x0.5 was refused (1.78)."""
    image = phantom("cxr", 40_600_003, size=128).image
    mean = image.mean()
    for shifted in (np.clip((image - mean) * 0.5 + mean, 0, 255).round().astype(np.uint8),
                    (255 * (image / 255.0) ** 2.0).round().astype(np.uint8),
                    np.asarray(Image.fromarray(image).rotate(15, Image.Resampling.BILINEAR,
                                                             fillcolor=tuple(int(v) for v in image[0, 0])))):
        verdict = gate(check, shifted)
        assert verdict.outcome == "unlike_training" and verdict.nearest_modality == "cxr", verdict.message


def test_the_refusal_limit_sits_in_the_gap_and_the_out_of_domain_side_wins_an_overlap():
    far, outside, near = np.linspace(0.5, 4.0, 101), np.linspace(9.0, 100.0, 101), np.linspace(0.5, 1.5, 101)
    refuse, figures = refuse_limit(1.2, far, outside, near)
    warned, refused = np.quantile(far, WARNED_QUANTILE), np.quantile(outside, 0.02)
    assert figures["gap"] and np.isclose(refuse, warned) and warned < refused
    assert figures["tuning_outside_refused"] >= 0.98 and figures["far_refused"] <= 1 - WARNED_QUANTILE + 0.01
    overlapping, figures = refuse_limit(1.2, np.linspace(0.5, 20.0, 101), outside, near)
    assert not figures["gap"] and np.isclose(overlapping, refused)  # the out-of-domain target first
    assert refuse_limit(1.2, far * 0.1, outside * 0.01, near)[0] == 1.2  # never below flag
    # too few far shifts to trust their quantile (a small fit of one's own): the milder shifts' band
    small, figures = refuse_limit(1.2, far[::25] * 3, outside, near)
    assert np.isclose(small, np.quantile(near, NEAR_QUANTILE) * NEAR_MARGIN) and figures["rule"].startswith("a small")


GENERATED = ("noise", "flat", "gradient", "checkerboard", "text")


def test_the_tuning_and_held_out_halves_share_no_image():
    """refuse is chosen on one half; eval --domain measures on the other. pydicom ships one image in
    several files (transfer syntaxes, some lossy): those copies stay in one half."""
    tuning, held_out = (out_of_domain(2, split) for split in ("tuning", "held_out"))
    assert len(tuning) >= 30 and len(held_out) >= 30
    # Generated cases (noise, flat fields, ...) come from each half's own seeds: alike by design.
    packaged = lambda cases: [c for c in cases if not c.name.startswith(GENERATED)]  # noqa: E731
    thumbs = lambda cases: np.stack([thumbnail(c.pixels) for c in packaged(cases)])  # noqa: E731
    a, b = thumbs(tuning), thumbs(held_out)
    closest = np.abs(a[:, None] - b[None]).mean(axis=(2, 3)).min()
    assert closest >= NEAR_COPY
    assert {c.name for c in packaged(tuning)}.isdisjoint(c.name for c in packaged(held_out))


def test_auroc_counts_ties_as_half():
    assert auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert auroc(np.array([1.0]), np.array([1.0])) == 0.5
    assert auroc(np.array([2.0]), np.array([1.0])) == 0.0


def test_a_ct_slice_is_refused_unless_edited_anyway_and_a_phantom_passes(check):
    ct = read_image(CT).pixels
    with pytest.raises(DomainRefused, match="not an image of a modality this model knows.*edit anyway"):
        gate(check, ct)
    verdict = gate(check, ct, edit_anyway=True)
    assert verdict.edit_anyway and verdict.warning.startswith("edited anyway: not an image of a modality")
    assert verdict.record()["outcome"] == "unknown_modality" and verdict.score > verdict.refuse
    fine = gate(check, phantom("cxr", 40_500_000, size=128).image)
    assert fine.outcome == "in_domain" and fine.warning is None and not fine.edit_anyway


def test_describe_never_reads_a_refused_image_with_confidence(check):
    d = describe(read_image(CT).pixels, check=check)
    assert d.refused and d.modality_confidence == 0.0
    assert "not an image of a modality this model knows" in d.summary()
    ok = describe(phantom("dermoscopy", 40_500_001, size=128).image, check=check)
    assert not ok.refused and ok.modality_confidence > 0.9 and ok.domain["outcome"] == "in_domain"


def test_a_model_without_statistics_is_unchecked_and_says_how_to_fit_them(tmp_path):
    verdict = folder_check(tmp_path, "my-model").check(phantom("cxr", 1, size=64).image)
    assert verdict.outcome == "unchecked" and "fit-domain --model my-model" in verdict.message
    assert verdict.warning == verdict.message


def test_fitted_statistics_read_back_and_other_classifier_weights_are_not_trusted(tmp_path):
    classifier = load_classifier()
    stats = fit_domain(classifier, phantom_sets(40, 20), {"classifier_sha256": "0" * 64})
    assert 0 < stats.flag < stats.refuse
    save_domain(tmp_path, stats)
    again = load_domain(tmp_path)
    assert again.flag == stats.flag and again.modalities == ("dermoscopy", "cxr")
    for a, b in zip(again.precisions["cxr"], stats.precisions["cxr"]):
        assert np.allclose(a, b, rtol=1e-5, atol=1e-6 * np.abs(b).max())
    verdict = folder_check(tmp_path, "mine").check(phantom("cxr", 1, size=64).image)
    assert verdict.outcome == "unchecked" and "another attribute classifier" in verdict.message


@pytest.fixture(scope="module")
def checked_micro_model(micro_model_folder, tmp_path_factory):
    """The micro model with the shipped statistics (they depend on the classifier, not the DiT)."""
    folder = tmp_path_factory.mktemp("checked") / "model"
    shutil.copytree(micro_model_folder, folder)
    shutil.copytree(EMBEDDED_FOLDER / DOMAIN_FOLDER, folder / DOMAIN_FOLDER)
    return folder


def test_the_command_line_refuses_a_ct_slice_before_the_model_loads(checked_micro_model, tmp_path, capsys):
    rc = main(["edit", "--model", str(checked_micro_model), "--image", str(CT), *SOURCE, "--steps", "2",
               "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "refused: not an image of a modality" in err and "--edit-anyway" in err
    assert not (tmp_path / "out").exists()


def test_edited_anyway_every_output_says_so(checked_micro_model, tmp_path, capsys):
    rc = main(["edit", "--model", str(checked_micro_model), "--image", str(CT), *SOURCE, "--steps", "2",
               "--attribute", "pacemaker=1", "--edit-anyway", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert rc == 0 and "warning: edited anyway: not an image of a modality" in captured.err
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert meta["domain"]["outcome"] == "unknown_modality" and meta["domain"]["edit_anyway"] is True
    assert any(n.startswith("warning: edited anyway") for n in meta["notes"])
    for name in ("neutral.png", "edited.png", "side_by_side.png"):
        record = read_png_provenance((tmp_path / "out" / name).read_bytes())
        assert record["extra"]["domain"]["edit_anyway"] is True, name


def test_a_phantom_upload_is_edited_without_a_warning(checked_micro_model, tmp_path, capsys):
    from tests.upload_files import png_bytes

    (tmp_path / "p.png").write_bytes(png_bytes(phantom("cxr", 40_500_002, size=128).image))
    rc = main(["edit", "--model", str(checked_micro_model), "--image", str(tmp_path / "p.png"), *SOURCE,
               "--steps", "2", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert rc == 0 and "warning" not in captured.err
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert meta["domain"]["outcome"] == "in_domain"
    record = read_png_provenance((tmp_path / "out" / "edited.png").read_bytes())
    assert record["extra"]["domain"]["outcome"] == "in_domain"


def test_fit_domain_refuses_bad_counts_and_a_missing_dataset_in_one_line(tmp_path, capsys):
    assert main(["fit-domain", "--n", "0", "--out", str(tmp_path)]) == 2
    assert main(["fit-domain", "--data", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "--n" in err[0] and "no such folder" in err[1]
    assert not (tmp_path / DOMAIN_FOLDER).exists()


def test_fit_domain_on_a_dataset_of_ones_own_writes_a_check_that_reads_it(tmp_path, capsys):
    """A model trained on an imagefolder (here: phantoms written by the phantoms command) gets its
    statistics from that folder; the check then knows its images and refuses a CT slice."""
    data = tmp_path / "data"
    assert main(["phantoms", "--modality", "cxr", "--n", "24", "--seed", "3", "--size", "64",
                 "--out", str(data)]) == 0
    capsys.readouterr()
    assert main(["fit-domain", "--data", str(data), "--n", "16", "--calibration", "8",
                 "--out", str(tmp_path / "adapter"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fitted_on"] == str(data)
    assert report["images"] == {"fit": 12, "calibration": 8, "shifted": 8, "far": 8}
    check = folder_check(tmp_path / "adapter", "adapter")
    assert check.stats.modalities == ("cxr",)
    assert check.check(read_image(CT).pixels).outcome == "unknown_modality"


def test_a_pixart_checkpoint_keeps_its_statistics_in_its_own_folder(tiny_folder):
    from pipelines.editing.pipeline import MedEditPipeline
    from pipelines.evaluation.domain import with_domain_check
    from pipelines.model.loading import load_model

    pipeline = with_domain_check(MedEditPipeline(load_model(str(tiny_folder))), "tiny")
    assert pipeline.model.domain_folder == tiny_folder
    verdict = pipeline.domain_check.check(np.zeros((64, 64, 3), np.uint8))
    assert verdict.outcome == "unchecked" and "fit-domain --model tiny" in verdict.message


def test_eval_domain_reports_the_figures_as_json(capsys):
    # The embedded model named: the app tests' session fixture sets $MEDEDIT_MODEL to the micro model.
    assert main(["eval", "--domain", "--model", "embedded", "--seeds", "6", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"]["in"] == 18 and report["images"]["near"] == 6 and report["images"]["known"] == 6
    assert set(report["known_modality"]) >= {"in_domain", "warned", "refused"}
    assert "known_refused" in report["targets_met"]
    assert 0.0 <= report["out_classifier_alone_confident"] <= 1.0
    assert main(["eval", "--domain", "--uploads"]) == 2
    assert "choose one" in capsys.readouterr().err


def test_a_series_edited_anyway_says_so_in_its_zip_readme_and_dicom(checked_micro_model, tmp_path, capsys):
    import io
    import zipfile

    import pydicom

    out = tmp_path / "out"
    rc = main(["series", "--model", str(checked_micro_model), "--image", str(CT), *SOURCE, "--steps", "2",
               "--frames", "2", "--control-points", "2", "--attribute", "pacemaker=1", "--out", str(out)])
    assert rc == 2 and "refused: not an image of a modality" in capsys.readouterr().err and not out.exists()
    rc = main(["series", "--model", str(checked_micro_model), "--image", str(CT), *SOURCE, "--steps", "2",
               "--frames", "2", "--control-points", "2", "--attribute", "pacemaker=1", "--edit-anyway",
               "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert json.loads((out / "manifest.json").read_text())["domain"]["edit_anyway"] is True
    with zipfile.ZipFile(out / "series.zip") as archive:
        readme = archive.read("README.txt").decode()
        exported = pydicom.dcmread(io.BytesIO(archive.read("dicom/frame_000.dcm")))
    assert "Domain:    EDITED ANYWAY, not an image of a modality this model knows" in readme
    assert '"edit_anyway": true' in exported.ImageComments
