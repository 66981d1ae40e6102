"""Slider ranges live with the model (each attribute's `range` in its mededit.json, measured by
scripts/slider_ranges.py): the library, the API and the command line refuse a scale beyond it with a
message that names the range, and the app's sliders span it."""

import json
import shutil

import numpy as np
import pytest

from pipelines.core.errors import MedEditError
from pipelines.core.files import ASSETS
from pipelines.core.limits import SLIDER_RANGE
from pipelines.editing.pipeline import MedEditPipeline
from pipelines.editing.requests import Edit, Sampling
from pipelines.model.info import INFO_FILE, read_model_info
from pipelines.model.loading import load_model
from pipelines.model.offered import check_sliders

S = Sampling("a dermoscopic image with melanocytic nevus (NV)", "fair skin", seed=3, steps=4)


def with_ranges(source, folder, ranges: dict) -> str:
    """A copy of a model folder whose mededit.json stores `ranges` ({name: [low, high]})."""
    shutil.copytree(source, folder)
    info = json.loads((folder / INFO_FILE).read_text())
    for a in info["attributes"]:
        if a["name"] in ranges:
            a["range"] = ranges[a["name"]]
    (folder / INFO_FILE).write_text(json.dumps(info))
    return str(folder)


@pytest.fixture(scope="module")
def ranged(micro_model_folder, tmp_path_factory):
    return with_ranges(micro_model_folder, tmp_path_factory.mktemp("ranged") / "m", {"hair": [-1.0, 1.5]})


def test_ranges_come_from_the_model_folder(micro_model_folder, ranged, tmp_path):
    info = read_model_info(ranged)
    assert info.slider_range("hair") == (-1.0, 1.5)
    assert info.slider_range("ruler") == SLIDER_RANGE  # none stored: the outer range
    assert read_model_info(micro_model_folder).slider_range("hair") == SLIDER_RANGE
    other = read_model_info(with_ranges(micro_model_folder, tmp_path / "o", {"hair": [-0.5, 2.0]}))
    assert other.slider_range("hair") == (-0.5, 2.0)


@pytest.mark.parametrize("bad", [[0.5, 2.0], [-1.0, 4.0], [1.0], "wide", [-1.0, True]])
def test_a_stored_range_outside_the_outer_one_or_not_around_zero_is_refused(micro_model_folder, tmp_path, bad):
    folder = with_ranges(micro_model_folder, tmp_path / "m", {"hair": bad})
    with pytest.raises(MedEditError, match="attribute 'hair' has slider range .* give \\[low, high\\] with -3"):
        read_model_info(folder)


def test_the_library_refuses_beyond_the_range_before_sampling(ranged):
    pipeline = MedEditPipeline(load_model(ranged))
    message = r"slider hair must be between -1 and 1.5 for the model mededit-default \(the range where " \
              r"it was measured .* mededit.json\), got 2"
    with pytest.raises(MedEditError, match=message):
        pipeline.edit(S, Edit(sliders={"hair": 2.0}))
    with pytest.raises(MedEditError, match="slider hair must be between -1 and 1.5 .* got -1.2"):
        pipeline.edit_image(np.full((64, 64, 3), 128, np.uint8), S, Edit(sliders={"hair": -1.2}))
    assert not pipeline.runs.items and not pipeline.inversions.items  # refused before any sampling
    assert pipeline.edit(S, Edit(sliders={"hair": 1.5, "ruler": 2.5})).edited.shape == (64, 64, 3)


def test_the_api_refuses_beyond_the_range(ranged):
    from app.inputs import parse_sliders

    pipeline = MedEditPipeline(load_model(ranged))
    assert parse_sliders('{"hair": -1, "ruler": 0}', pipeline) == {"hair": -1.0}
    with pytest.raises(MedEditError, match="slider hair must be between -1 and 1.5 for the model"):
        parse_sliders('{"hair": 1.6}', pipeline)


def test_the_command_line_check_reads_the_folder_without_loading(ranged):
    check_sliders(ranged, {"hair": 1.5, "ruler": -3.0})
    with pytest.raises(MedEditError, match="slider hair must be between -1 and 1.5"):
        check_sliders(ranged, {"hair": 1.6})
    with pytest.raises(MedEditError, match="unknown attribute 'bogus'"):
        check_sliders(ranged, {"bogus": 1.0})


def test_the_apps_sliders_span_the_models_range():
    import gradio as gr

    from app.controls import slider_panel

    attributes = [{"name": "hair", "modality": "dermoscopy", "channel": "style", "phrase": "hairs",
                   "range": [-1.0, 1.5]},
                  {"name": "ruler", "modality": "dermoscopy", "channel": "style", "phrase": "a ruler"}]
    with gr.Blocks():
        _, sliders = slider_panel(attributes)
    assert (sliders["hair"].minimum, sliders["hair"].maximum) == (-1.0, 1.5)
    assert (sliders["ruler"].minimum, sliders["ruler"].maximum) == SLIDER_RANGE


def test_the_shipped_model_stores_the_measured_ranges():
    """Every attribute of the embedded model has the range its report (tuning seeds) measured."""
    report = json.loads((ASSETS / "slider_ranges.json").read_text())
    info = read_model_info(ASSETS / "mededit-default")
    assert report["seed_range"] == "tuning"
    assert {a["name"]: list(info.slider_range(a["name"])) for a in info.attributes} == report["ranges"]


def test_picking_a_model_gives_its_sliders_its_ranges(ranged, monkeypatch):
    from app import handlers

    monkeypatch.setenv("MEDEDIT_MODEL", ranged)
    sliders = handlers.model_picked(ranged, ["hair", "ruler", "not_offered"], False)["sliders"]
    assert (sliders["hair"]["minimum"], sliders["hair"]["maximum"]) == (-1.0, 1.5)
    assert (sliders["ruler"]["minimum"], sliders["ruler"]["maximum"]) == SLIDER_RANGE
    assert sliders["not_offered"]["visible"] is False


def test_the_apps_examples_are_within_the_shipped_models_ranges():
    from app.examples import EXAMPLES

    info = read_model_info(ASSETS / "mededit-default")
    for example in EXAMPLES:
        for name, scale in example.sliders.items():
            info.slider(name, scale)  # raises for a value the app would refuse
