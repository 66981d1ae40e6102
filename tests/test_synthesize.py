"""`synthesize`: spec checks, the weighted schedule, two processes writing one dataset, resume."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.data.converters import validate_imagefolder
from pipelines.core.errors import MedEditError
from pipelines.export.synthesis import synthesize
from pipelines.export.synthesis_spec import parse_spec, read_spec, schedule

ROOT = Path(__file__).resolve().parent.parent
SPEC = [{"anatomy": "chest x-ray with pleural effusion", "style": "support devices", "weight": 2,
         "labels": {"effusion": 1, "support_devices": 1}},
        {"anatomy": "chest x-ray", "style": "", "labels": {"effusion": 0},
         "sliders": {"support_devices": 0.5}}]


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"prompts": SPEC, "steps": 2}))
    return path


def test_schedule_keeps_the_weights_in_every_prefix():
    order = schedule([2, 1], 9)
    assert order == [0, 1, 0, 0, 1, 0, 0, 1, 0]
    assert schedule([1, 1, 2], 4).count(2) == 2


@pytest.mark.parametrize("spec, message", [
    ([], "non-empty JSON list"),
    ([{"anatomy": "", "style": ""}], "needs an anatomy prompt"),
    ([{"anatomy": "x", "weight": 0}], "weight must be above 0"),
    ([{"anatomy": "x", "weight": "2"}], "weight must be a number"),
    ([{"anatomy": "x", "labels": {"effusion": 2}}], "labels must map names to 0 or 1"),
    ([{"anatomy": "x", "sliders": {"hair": 9}}], "slider hair must be between -3 and 3"),
    ([{"anatomy": "x", "styel": "typo"}], "unknown key.*styel"),
    ({"prompts": [{"anatomy": "x"}], "steps": 0}, "spec steps must be between 1 and 100"),
])
def test_bad_specs_fail_before_any_work(spec, message):
    with pytest.raises(MedEditError, match=message):
        parse_spec(spec)


def test_bad_spec_file_and_unknown_slider_fail_clearly(tmp_path, tiny_folder):
    (tmp_path / "bad.json").write_text("[{")
    with pytest.raises(MedEditError, match="not valid JSON"):
        read_spec(tmp_path / "bad.json")
    spec = parse_spec([{"anatomy": "x", "sliders": {"no_such": 1}}])
    with pytest.raises(MedEditError, match="unknown attribute 'no_such'"):
        synthesize(spec, 2, tmp_path / "out", str(tiny_folder), progress=False)
    assert not (tmp_path / "out" / "images").exists()


def test_resume_writes_only_missing_indices(tmp_path, tiny_folder, spec_file):
    spec, out = read_spec(spec_file), tmp_path / "out"
    first = synthesize(spec, 3, out, str(tiny_folder), seed=7, progress=False)
    assert first["written"] == 3 and first["total"] == 3
    before = (out / "images" / "000001.png").stat().st_mtime_ns
    more = synthesize(spec, 5, out, str(tiny_folder), seed=7, progress=False)
    assert more["written"] == 2 and more["skipped"] == 3 and more["total"] == 5
    assert (out / "images" / "000001.png").stat().st_mtime_ns == before
    rows = validate_imagefolder(out)
    assert [r["seed"] for r in rows] == [7, 8, 9, 10, 11]
    with pytest.raises(MedEditError, match="another seed"):
        synthesize(spec, 5, out, str(tiny_folder), seed=8, progress=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_share_the_work_and_a_rerun_resumes(tmp_path, tiny_folder, spec_file):
    out = tmp_path / "synthetic"
    port = str(free_port())
    command = [sys.executable, "-m", "pipelines", "synthesize", "--spec", str(spec_file), "--n", "5",
               "--out", str(out), "--model", str(tiny_folder), "--json"]
    processes = []
    for rank in (0, 1):  # what `accelerate launch --num_processes 2 --cpu` sets, loopback only
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
               "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
    results = [p.communicate(timeout=240) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [r[1][-2000:] for r in results]
    summary = json.loads(results[0][0])
    assert summary["processes"] == 2 and summary["written"] == 3 and summary["total"] == 5
    assert results[1][0].strip() == ""  # only the main process reports
    rows = validate_imagefolder(out)
    assert [r["index"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["entry"] for r in rows] == schedule([2, 1], 5)
    assert all(r["synthetic"] and r["note"] == "synthetic image, not a patient" for r in rows)
    assert rows[1]["sliders"] == {"support_devices": 0.5} and rows[0]["labels"]["effusion"] == 1
    assert not list(out.glob("metadata-*.jsonl"))  # shards merged and removed
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "images").iterdir()}
    # The rerun finds every index written and writes nothing.
    again = synthesize(read_spec(spec_file), 5, out, str(tiny_folder), progress=False)
    assert again["written"] == 0 and again["total"] == 5
    assert stamps == {p.name: p.stat().st_mtime_ns for p in (out / "images").iterdir()}
