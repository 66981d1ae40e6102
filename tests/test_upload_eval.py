"""The upload evaluation and bench (evaluation/uploads.py) on the micro model: every figure is
there and in range, the inversion is exact, the naive way is measured beside it; `eval --uploads`
runs it from the command line, and reports run in parts merge into one (scripts/merge_upload_reports.py)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.core.errors import MedEditError
from pipelines.data.phantoms import phantom
from pipelines.editing.inversion import encode
from pipelines.cli import main
from pipelines.editing.requests import Sampling
from pipelines.evaluation.plan import row_seeds
from pipelines.evaluation.uploads import bench_uploads, evaluate_uploads, sdedit
from pipelines.model.loading import load_model


def test_the_report_has_every_figure_for_both_directions(micro_model_folder):
    model = load_model(str(micro_model_folder))
    report = evaluate_uploads(model, seeds=2, attributes=["ruler"], steps=4, batch=2, seed_range="tuning",
                              progress=False)
    add, remove = report["rows"]
    assert (add["direction"], remove["direction"]) == ("add", "remove") and add["seeds"] == 2
    assert add["first_seed"] + 2 == remove["first_seed"]  # removing draws the next seeds of the block
    for row in report["rows"]:
        assert row["reconstruction_max_diff"] <= 1 and row["latent_error_max"] < 1e-5  # float tolerance
        assert row["truth_lands"] == 1.0 and row["source_lands"] == 0.0  # the renderer's pair
        for key in ("edit_lands", "naive_edit_lands", "no_non_target_flip"):
            assert 0.0 <= row[key] <= 1.0
        assert row["round_trip_psnr_vs_truth"] > 0 and row["naive_psnr_vs_truth"] > 0
        assert 0.0 <= row["edit_footprint_area"] <= 1.0
        # Outside the footprint no channel moved more than 24 levels: PSNR >= 20 log10(255 / 24).
        both = row["psnr_outside_truth_and_edit_vs_source"]
        assert both is None or both >= 20 * np.log10(255 / 24)
        # Inside the lesion: the mean over all edits lies between those with a flip and those without.
        apart = [row[f"lesion_psnr_vs_source_{k}"] for k in ("flipped", "no_flip")]
        assert row["lesion_psnr_vs_source"] > 0 and row["truth_lesion_psnr_vs_source"] > 0
        assert any(v is not None for v in apart)
        known = [v for v in apart if v is not None]
        assert min(known) - 1e-9 <= row["lesion_psnr_vs_source"] <= max(known) + 1e-9
    assert set(report["summary"]) == {"add", "remove", "reconstruction_max_diff", "latent_error_max"}
    (chest,) = evaluate_uploads(model, seeds=1, attributes=["marker"], directions=("add",), steps=2, batch=1,
                                seed_range="tuning", progress=False)["rows"]
    assert chest["lesion_psnr_vs_source"] is None and chest["lesion_psnr_vs_source_flipped"] is None
    assert chest["truth_lesion_psnr_vs_source"] is None


@pytest.mark.parametrize("directions", [("up",), ("add", "sideways"), ()])
def test_an_unknown_direction_is_refused_before_any_work(directions):
    with pytest.raises(MedEditError, match="choose one or both of add, remove"):
        evaluate_uploads(None, seeds=2, attributes=["ruler"], directions=directions, progress=False)


def test_sdedit_regenerates_from_the_swap_point_and_keeps_the_image_at_the_end(micro_pipeline):
    model = micro_pipeline.model
    image = phantom("cxr", 2, size=64).image
    clean = encode(model.vae, torch.from_numpy(image.copy())[None])
    s = Sampling("Normal chest X-ray", "PA view", steps=5)
    branches = micro_pipeline.neutral_branches(s)
    assert torch.equal(sdedit(model.transformer, model.scheduler, clean, 5, 5, branches, 3.0, 3.0, 0), clean)
    early = sdedit(model.transformer, model.scheduler, clean, 5, 1, branches, 3.0, 3.0, 0)
    late = sdedit(model.transformer, model.scheduler, clean, 5, 4, branches, 3.0, 3.0, 0)
    assert (early - clean).abs().mean() > (late - clean).abs().mean() > 0  # earlier: further away


def test_the_bench_times_a_first_edit_and_a_re_edit(micro_model_folder):
    result = bench_uploads(load_model(str(micro_model_folder)), repeats=1, source_size=96)
    assert 0 < result["reedit_s"] and 0 < result["upload_to_first_edit_s"] and np.isfinite(result["reedit_s"])


def test_eval_uploads_command_passes_every_option_and_writes_the_json_it_prints(micro_model_folder, tmp_path,
                                                                               capsys):
    out = tmp_path / "uploads.json"
    assert main(["eval", "--uploads", "--model", str(micro_model_folder), "--seeds", "1", "--attributes", "ruler",
                 "--directions", "remove", "--edit", "slider", "--steps", "2", "--swap-at", "0.5", "--locality",
                 "0", "--batch", "1", "--seed-range", "tuning", "--threads", "1", "--refresh", "0.5", "--json",
                 "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    (row,) = printed["rows"]
    assert (row["attribute"], row["direction"], row["seeds"]) == ("ruler", "remove", 1)
    assert row["first_seed"] == row_seeds("tuning", "ruler", 2)[1]  # removing: the block's second half
    assert (printed["edit"], printed["steps"], printed["swap_at"], printed["locality"]) == ("slider", 2, 0.5, 0.0)
    assert printed["seed_range"] == "tuning" and printed["threads"] == 1 and printed["refresh"] == 0.5
    assert set(printed["summary"]) == {"remove", "reconstruction_max_diff", "latent_error_max"}


def test_eval_uploads_table_has_a_line_per_row(micro_model_folder, capsys):
    assert main(["eval", "--uploads", "--model", str(micro_model_folder), "--seeds", "1", "--attributes",
                 "ink", "--steps", "2", "--batch", "1", "--seed-range", "tuning"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["attribute", "dir", "lands"]
    assert [line.split()[:2] for line in lines[1:3]] == [["ink", "add"], ["ink", "remove"]]
    assert lines[3].startswith("1 uploads per row, edit by prompts;") and len(lines) == 4


def test_reports_run_in_parts_merge_into_one_with_the_summary_over_all_rows(micro_model_folder, tmp_path):
    import importlib.util
    script = Path(__file__).resolve().parent.parent / "scripts" / "merge_upload_reports.py"
    spec = importlib.util.spec_from_file_location("merge", script)
    merge = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(merge)
    model = load_model(str(micro_model_folder))
    run = lambda attribute, direction, **kw: evaluate_uploads(  # noqa: E731
        model, seeds=1, attributes=[attribute], directions=(direction,), steps=2, batch=1, seed_range="tuning",
        progress=False, **kw)
    parts = [run("ruler", "add"), run("ink", "remove")]
    paths = []
    for i, part in enumerate(parts):
        paths.append(tmp_path / f"part{i}.json")
        paths[-1].write_text(json.dumps(part))
    assert merge.main([*map(str, paths), "--out", str(tmp_path / "all.json")]) == 0
    merged = json.loads((tmp_path / "all.json").read_text())
    assert [(r["attribute"], r["direction"]) for r in merged["rows"]] == [("ruler", "add"), ("ink", "remove")]
    whole = evaluate_uploads(model, seeds=1, attributes=["ruler", "ink"], steps=2, batch=1, seed_range="tuning",
                             progress=False)
    rows = {(r["attribute"], r["direction"]): r for r in whole["rows"]}
    assert merged["rows"] == [rows["ruler", "add"], rows["ink", "remove"]]  # a part is the same rows
    assert set(merged["summary"]) == {"add", "remove", "reconstruction_max_diff", "latent_error_max"}
    with pytest.raises(SystemExit, match="differ in refresh"):
        merge.merge([parts[0], run("ink", "remove", refresh=0.5)])
    with pytest.raises(SystemExit, match="more than one part"):
        merge.merge([parts[0], parts[0]])
