"""Every path takes its resolution from the model: a MedEdit model at 256 px (the micro one, with the
256-px model's shapes: an f8 autoencoder, 32x32x8 latents, patch 4) makes, reads, shows and exports
256-px images through the library, the command line and the app's API, where the 64-px model keeps
its 64 px. Also: a folder whose mededit.json disagrees with its weights is refused, and the model
picker offers a shipped model only once it is whole."""

import argparse
import dataclasses
import io
import json
import shutil
import zipfile

import numpy as np
import pydicom
import pytest
from PIL import Image

from pipelines.core.errors import MedEditError
from pipelines.data.phantoms import phantom
from pipelines.data.uploads import read_image
from pipelines.editing.requests import Edit, Sampling, Series
from pipelines.model.info import read_model_info, write_model_info
from tests.micro_model import copy_with_steps
from tests.upload_files import dicom_bytes, dicom_dataset, jpeg_bytes

SIZE = 256
NEVUS = "a dermoscopic image with melanocytic nevus (NV)"
SKIN = "light skin, no artifacts"
HAIR = "light skin, with hairs visible on skin"
FAST = dict(steps=3, seed=2)


def sizes_in_zip(path) -> dict[str, tuple[int, int]]:
    """Each image in an export ZIP (PNG, GIF, WebP, DICOM) -> (width, height)."""
    found = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            data = archive.read(name)
            if name.endswith((".png", ".gif", ".webp")):
                found[name] = Image.open(io.BytesIO(data)).size
            elif name.startswith("dicom/"):
                ds = pydicom.dcmread(io.BytesIO(data))
                found[name] = (ds.Columns, ds.Rows)
    return found


def check_export(path, size: int) -> None:
    """Every frame, animation and DICOM at the model's size; the side-by-side's panels too."""
    found = sizes_in_zip(path)
    figure = found.pop("side_by_side.png")
    assert figure[0] > 3 * size and figure[1] > size  # three whole panels with labels, nothing shrunk
    assert any(n.startswith("dicom/") for n in found) and "series.webp" in found and "series.gif" in found
    assert set(found.values()) == {(size, size)}, found


def dicom_512() -> bytes:
    """A 512x512 12-bit DICOM of a chest X-ray phantom."""
    image = phantom("cxr", 3, size=512).image[..., 0].astype(np.uint16) * 16
    return dicom_bytes(dicom_dataset(image, WindowCenter=2040, WindowWidth=4080))


def photo_720x477() -> bytes:
    """A 720x477 JPEG of a dermoscopy phantom (a phone photo's aspect)."""
    image = Image.fromarray(phantom("dermoscopy", 5, size=512).image).resize((720, 477), Image.BICUBIC)
    return jpeg_bytes(np.asarray(image))


@pytest.fixture(scope="module")
def pipeline_256(micro_256_folder):
    from pipelines.editing.pipeline import MedEditPipeline
    from pipelines.model.loading import load_model
    return MedEditPipeline(load_model(str(micro_256_folder)))


# --- the library --------------------------------------------------------------------------------

def test_the_size_is_the_weights_and_mededit_json_states_it(pipeline_256, micro_pipeline):
    assert pipeline_256.model.image_size == pipeline_256.model.info.image_size == SIZE
    assert pipeline_256.model.latent_shape == (8, 32, 32) and pipeline_256.model.vae_downscale == 8
    assert micro_pipeline.model.image_size == micro_pipeline.model.info.image_size == 64
    assert micro_pipeline.model.latent_shape == (8, 16, 16)


def test_a_folder_whose_mededit_json_disagrees_with_its_weights_is_refused(micro_256_folder, tmp_path):
    from pipelines.model.loading import load_model
    folder = tmp_path / "says-64"
    shutil.copytree(micro_256_folder, folder)
    write_model_info(folder, dataclasses.replace(read_model_info(folder), image_size=64))
    with pytest.raises(MedEditError, match="says 64 px, but its weights make 256 px images"):
        load_model(str(folder))


def test_generate_edit_and_series_are_made_at_the_models_size(pipeline_256):
    s = Sampling(NEVUS, SKIN, **FAST)
    assert pipeline_256.generate(s).shape == (SIZE, SIZE, 3)
    result = pipeline_256.edit(s, Edit(to_style=HAIR, sliders={"ruler": 1.0}, swap_at=0.3, locality=0.3))
    assert result.neutral.shape == result.edited.shape == (SIZE, SIZE, 3)
    assert (result.neutral != result.edited).any()
    series = pipeline_256.series(s, Edit(to_style=HAIR), Series(frames=3, mode="embedding"))
    assert [f.shape for f in series.frames] == [(SIZE, SIZE, 3)] * 3


@pytest.mark.parametrize("upload, source, mask_at", [(dicom_512, "512x512", "file"),
                                                      (photo_720x477, "720x477", "model")])
def test_uploads_are_edited_at_the_models_size_with_masks_of_either_size(pipeline_256, upload, source, mask_at):
    from pipelines.editing.regions import Regions
    decoded = read_image(upload())
    height, width = decoded.pixels.shape[:2] if mask_at == "file" else (SIZE, SIZE)
    keep = np.zeros((height, width), bool)
    keep[: height // 3] = True  # the top third stays the upload's own
    s = Sampling("", SKIN, **FAST) if "720" in source else Sampling("Normal chest X-ray", "PA view", **FAST)
    result = pipeline_256.edit_image(decoded.pixels, s, Edit(sliders={"ruler": 1.0}, swap_at=0.3),
                                     Regions(keep=keep))
    assert result.neutral.shape == result.edited.shape == (SIZE, SIZE, 3)
    assert any(f"from {source} to" in note and f"{SIZE}x{SIZE}" in note for note in result.notes), result.notes
    assert np.array_equal(result.edited[: SIZE // 3 - 2], result.neutral[: SIZE // 3 - 2])
    assert (result.edited != result.neutral).any()


def test_the_export_carries_the_models_full_resolution(pipeline_256, tmp_path):
    from pipelines.export.archive import export_zip
    from pipelines.export.provenance import provenance_from_settings
    s = Sampling(NEVUS, SKIN, **FAST)
    result = pipeline_256.series(s, Edit(to_style=HAIR), Series(frames=3, mode="embedding"))
    frames = [Image.fromarray(f) for f in result.frames]
    path = export_zip(frames, provenance_from_settings(result.settings), [{"t": t} for t in result.times],
                      tmp_path / "export.zip", before=frames[0], after=frames[-1])
    check_export(path, SIZE)


def test_the_classifier_reads_256_px_images_as_it_reads_64_px_ones():
    """The shipped classifier (trained on phantoms box-filtered to its input) on 256-px phantoms:
    the labels it finds are as right as on the same phantoms at 64 px, and the landing check of an
    edit at 256 px reads them so."""
    from pipelines.evaluation.classifier import OUTPUTS, load_classifier, predict_probs
    from pipelines.data.attributes import attributes_of
    classifier = load_classifier()
    right = {64: [], 256: []}
    for modality in ("dermoscopy", "cxr"):
        drawn = [phantom(modality, 30_000_100 + i, size=256) for i in range(12)]
        columns = [OUTPUTS.index(a.name) for a in attributes_of(modality)]
        truth = np.array([[p.labels[a.name] for a in attributes_of(modality)] for p in drawn])
        for size in right:
            images = [np.asarray(Image.fromarray(p.image).resize((size, size), Image.BOX)) for p in drawn]
            found = predict_probs(classifier, images)[:, columns] >= 0.5
            right[size].append(found == truth.astype(bool))
    accuracy = {size: float(np.concatenate(r).mean()) for size, r in right.items()}
    assert accuracy[256] >= 0.95 and abs(accuracy[256] - accuracy[64]) <= 0.02, accuracy


# --- the command line ---------------------------------------------------------------------------

def png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def test_the_commands_make_read_and_export_at_the_models_size(micro_256_folder, tmp_path, capsys):
    from pipelines.cli import main
    model = ["--model", str(micro_256_folder), "--steps", "3"]
    assert main(["generate", *model, "--anatomy", NEVUS, "--style", SKIN, "--seed", "1",
                 "--out", str(tmp_path / "one.png")]) == 0
    assert png_size(tmp_path / "one.png") == (SIZE, SIZE)
    upload = tmp_path / "chest.dcm"
    upload.write_bytes(dicom_512())
    assert main(["edit", *model, "--image", str(upload), "--anatomy", "Normal chest X-ray", "--style", "PA view",
                 "--attribute", "pacemaker=1", "--out", str(tmp_path / "edit")]) == 0
    assert png_size(tmp_path / "edit" / "neutral.png") == png_size(tmp_path / "edit" / "edited.png") == (SIZE, SIZE)
    assert png_size(tmp_path / "edit" / "side_by_side.png")[0] > 3 * SIZE
    assert "from 512x512 to 256x256" in json.dumps(json.loads((tmp_path / "edit" / "metadata.json").read_text()))
    assert main(["series", *model, "--anatomy", NEVUS, "--style", SKIN, "--to-style", HAIR, "--frames", "3",
                 "--mode", "embedding", "--out", str(tmp_path / "series")]) == 0
    series = tmp_path / "series"
    assert {png_size(series / f"frame_{i:03d}.png") for i in range(3)} == {(SIZE, SIZE)}
    for animation in ("series.gif", "series.webp"):
        assert png_size(series / animation) == (SIZE, SIZE)
    check_export(series / "series.zip", SIZE)
    capsys.readouterr()


@pytest.fixture(scope="module")
def two_step_256(micro_256_folder, tmp_path_factory):
    """The 256-px micro model sampling in 2 steps: eval and bench stay quick."""
    return copy_with_steps(micro_256_folder, tmp_path_factory.mktemp("two-step-256") / "micro-256-two-step", 2)


def test_eval_uploads_and_bench_measure_at_the_models_size(two_step_256, tmp_path, capsys):
    from pipelines.cli import main
    model = ["--model", str(two_step_256), "--threads", "1", "--json"]
    assert main(["eval", *model, "--seeds", "1", "--attributes", "hair", "--batch", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["attributes"][0]["psnr_whole"] is not None  # sampled, decoded and judged at 256 px
    assert main(["eval", "--uploads", *model, "--seeds", "1", "--attributes", "hair", "--directions", "add"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["image_size"] == SIZE and report["rows"]
    assert main(["bench", *model, "--repeats", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["image_size"] == SIZE and report["uploads"]["source_size"] == 512  # larger than the model's


def test_fit_domain_fits_the_models_images_at_its_size(micro_256_folder, tmp_path, capsys):
    from pipelines.cli import main
    folder = tmp_path / "model"
    shutil.copytree(micro_256_folder, folder)
    assert main(["fit-domain", "--model", str(folder), "--n", "8", "--calibration", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["image_size"] == SIZE and "--model" in report["command"]
    info = json.loads((folder / "domain" / "domain.json").read_text())
    assert info["image_size"] == SIZE


def test_a_model_that_ships_its_own_classifier_is_read_by_it_everywhere(micro_256_folder, tmp_path, capsys):
    """MODEL/classifier (the 256-px model's reads 128 px, with a lesion output) reads that model's
    images in the landing notes, Describe and the domain check (fitted with it too), not the
    default 64-px one: here one that finds dermoscopy and no lesion in every image."""
    import hashlib

    import torch

    from pipelines.cli import main
    from pipelines.editing.pipeline import MedEditPipeline
    from pipelines.evaluation.classifier import (LESION, OUTPUTS, load_classifier, model_classifier,
                                                 save_classifier)
    from pipelines.evaluation.describe import describe
    from pipelines.evaluation.domain import folder_check
    from pipelines.evaluation.landing import add_landing
    from pipelines.model.loading import load_model
    from pipelines.training.classifier import starting_classifier
    folder = tmp_path / "own-classifier"
    shutil.copytree(micro_256_folder, folder)
    own = starting_classifier(argparse.Namespace(init="assets/classifier", size=128, lesion_free=0.2))
    with torch.no_grad():  # dermoscopy and bare skin, whatever the image
        own.head.weight[OUTPUTS.index("modality_cxr")] = 0.0
        own.head.bias[OUTPUTS.index("modality_cxr")] = -10.0
        own.lesion_head.weight.zero_()
        own.lesion_head.bias.fill_(-10.0)
    save_classifier(own, folder / "classifier", dtype=torch.float16)
    pipeline = MedEditPipeline(load_model(str(folder)))
    reader = model_classifier(pipeline.model.domain_folder)
    assert reader.config.input_size == 128 and reader.config.has_lesion
    assert load_classifier().config.input_size == 64 and not load_classifier().config.has_lesion
    # did the edit land: the default classifier has no lesion output, so says nothing of it
    result = add_landing(pipeline.edit(Sampling(NEVUS, SKIN, **FAST), Edit(to_style=HAIR)), pipeline.model)
    assert result.settings["landing"]["lesion"]["found"] is False
    assert any(note.startswith("no lesion found") for note in result.notes), result.notes
    # Describe, through the model's domain check (no statistics yet: unchecked, same classifier)
    check = folder_check(folder, str(folder))
    assert check.stats is None and check.classifier is reader
    description = describe(phantom("dermoscopy", 5, size=SIZE).image, check=check)
    assert description.findings[0].name == LESION and not description.findings[0].present
    assert description.anatomy == "a dermoscopic image of skin with no lesion"
    # the domain check: fitted with the model's classifier, and used with it
    assert main(["fit-domain", "--model", str(folder), "--n", "8", "--calibration", "8", "--json"]) == 0
    capsys.readouterr()
    info = json.loads((folder / "domain" / "domain.json").read_text())
    assert info["classifier_sha256"] == hashlib.sha256((folder / "classifier" / "model.safetensors").read_bytes()).hexdigest()
    check = folder_check(folder, str(folder))
    assert check.stats is not None and check.classifier is reader



# --- the app: its API (gradio_client), its page's views, its model picker -------------------------

def api_client(app_url):
    gradio_client = pytest.importorskip("gradio_client")
    return gradio_client.Client(app_url, verbose=False)


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_the_api_makes_edits_and_exports_at_the_models_size(app_url, micro_256_folder):
    client, model = api_client(app_url), str(micro_256_folder)
    edit = dict(anatomy=NEVUS, style=SKIN, to_style=HAIR, sliders='{"ruler": 1}', swap_at=0.3, seed=2, steps=3,
                anatomy_scale=3.0, style_scale=3.0, model=model)
    image, _ = client.predict(NEVUS, SKIN, 1, 3, 3.0, 3.0, model, api_name="/generate")
    assert pixels(image).shape == (SIZE, SIZE, 3)
    neutral, edited, difference, figure, settings = client.predict(**edit, api_name="/edit")
    assert pixels(neutral).shape == pixels(edited).shape == pixels(difference).shape == (SIZE, SIZE, 3)
    assert pixels(figure).shape[1] > 3 * SIZE  # its panels at the true pixels, not shrunk nor enlarged
    reproduce = {k: v for k, v in settings.items() if k != "timing"}  # the request's own timing: not a setting
    check_export(client.predict(json.dumps(reproduce), api_name="/export"), SIZE)
    frames, animation, _ = client.predict(**edit, mode="embedding", frames=3, api_name="/series")
    assert {pixels(f["image"]).shape for f in frames} == {(SIZE, SIZE, 3)}
    assert Image.open(animation).size == (SIZE, SIZE)


@pytest.mark.parametrize("make, name, source", [(dicom_512, "chest.dcm", "512x512"),
                                               (photo_720x477, "skin.jpg", "720x477")])
def test_the_api_edits_uploads_at_the_models_size(app_url, micro_256_folder, tmp_path, make, name, source):
    from gradio_client import handle_file
    client = api_client(app_url)
    path = tmp_path / name
    path.write_bytes(make())
    upload, edited, _, figure, archive, settings = client.predict(
        handle_file(str(path)), "", "", "", "", '{"ruler": 1}', 0.3, 2, 3, 3.0, 3.0, str(micro_256_folder),
        locality=0.0, edit_mask=None, keep_mask=None, api_name="/edit_image")
    assert pixels(upload).shape == pixels(edited).shape == (SIZE, SIZE, 3)
    assert any(f"from {source} to" in n and f"{SIZE}x{SIZE}" in n for n in settings["notes"]), settings["notes"]
    check_export(archive, SIZE)


@pytest.fixture()
def both_sizes(micro_model_folder, micro_256_folder, monkeypatch):
    """The UI's handlers in-process, offering the 64-px and the 256-px micro models."""
    from app import serving
    monkeypatch.setenv("MEDEDIT_MODEL", f"{micro_model_folder},{micro_256_folder}")
    old = serving.configure(serving.ServerLimits())
    yield {64: str(micro_model_folder), SIZE: str(micro_256_folder)}
    serving.configure(old)


@pytest.mark.parametrize("size, shown, blocks", [(64, 384, True), (SIZE, SIZE, False)])
def test_the_page_shows_small_images_in_blocks_and_large_ones_at_their_own_pixels(both_sizes, size, shown, blocks):
    """64 px: enlarged 6x, nearest neighbour, drawn without smoothing (the file name tells the page);
    256 px: its own pixels, which the page scales smoothly: no blocks."""
    from app import handlers
    form = dict(model=both_sizes[size], anatomy=NEVUS, style=SKIN, to_anatomy="", to_style=HAIR, swap_at=0.3,
                seed=4, steps=3, anatomy_scale=3.0, style_scale=3.0, locality=0.0)
    out = handlers.edit(form, {})
    before, after = out["pair"]
    for path in (before, after, out["difference"]):
        assert Image.open(path).size == (shown, shown)
        assert (".blocks." in path) == blocks
    true = out["session"]["edit"]["frames"]
    assert true[0].shape == (size, size, 3)  # what the export is made of
    if not blocks:
        assert np.array_equal(pixels(before), true[0])
    assert ("nearest neighbour" in out["notes"]) == blocks and ("its own pixels" in out["notes"]) != blocks
    series = handlers.series(form, {"mode": "embedding", "frames": 2, "control_points": 3, "bend": 0.0}, {})
    assert all((".blocks." in path) == blocks and Image.open(path).size == (shown, shown)
               for path, _ in series["gallery"])


def test_the_pages_css_draws_only_block_views_without_smoothing():
    from app.shown_images import BLOCKS
    from app.ui import CSS
    assert f'img[src*="{BLOCKS}."]' in CSS and "img { image-rendering: pixelated" not in CSS


def whole_copy(source, folder):
    shutil.copytree(source, folder)
    return folder


def test_a_shipped_model_is_offered_once_whole_and_the_default_stays(micro_256_folder, tmp_path, monkeypatch):
    from app import controls, state
    from pipelines.model import offered
    assets = tmp_path / "assets"
    whole = whole_copy(micro_256_folder, assets / "mededit-256")
    training = assets / "mededit-512"
    shutil.copytree(micro_256_folder / "vae", training / "vae")  # only its autoencoder so far
    found = offered.shipped_models(assets)
    assert found[str(whole)] == ""
    assert "not a complete MedEdit model" in found[str(training)] and "transformer/" in found[str(training)]
    monkeypatch.delenv("MEDEDIT_MODEL", raising=False)
    monkeypatch.setattr(state, "shipped_models", lambda: offered.shipped_models(assets))
    assert state.model_choices() == [offered.EMBEDDED, str(whole)]  # the default first, unchanged
    assert state.check_model_choice(str(whole)) == str(whole)
    info = controls.picker_info()
    assert "Not offered: mededit-512" in info and "transformer/" in info and "mededit-256" not in info
    monkeypatch.setenv("MEDEDIT_MODEL", str(whole))  # $MEDEDIT_MODEL lists exactly what is offered
    assert state.model_choices() == [str(whole)] and state.models_not_offered() == {}


def test_the_shipped_256_px_folder_is_offered_only_when_it_loads(monkeypatch):
    """assets/mededit-256 (in training): offered exactly when the loader's own check passes."""
    from app import state
    from pipelines.core.files import ASSETS
    from pipelines.model.folder_check import check_model_folder
    folder = ASSETS / "mededit-256"
    if not folder.is_dir():
        pytest.skip("no assets/mededit-256 in this checkout")
    monkeypatch.delenv("MEDEDIT_MODEL", raising=False)
    try:
        check_model_folder(folder)
        whole = True
    except MedEditError:
        whole = False
    assert (str(folder) in state.model_choices()) == whole
    assert (str(folder) in state.models_not_offered()) != whole
    assert state.model_choices()[0] == "embedded"
