"""A run killed mid-way (SIGTERM, SIGKILL) leaves nothing half-written under a real name, and the
next run completes: real `python -m pipelines` processes, real signals."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines.data.converters import validate_imagefolder
from pipelines.data.phantoms import phantom

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def start(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipelines", *args], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, process: subprocess.Popen, timeout: float = 180.0) -> None:
    """Until `condition()` holds while the process still runs (it must be killed mid-way)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"ended before the kill: {process.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "the run never got under way"
        time.sleep(0.05)


def kill(process: subprocess.Popen, signum: int) -> tuple[int, str]:
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    return process.returncode, err


def hidden_temporaries(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f".{name}.tmp-*"))


def decodes_whole(path: Path) -> bool:
    with Image.open(path) as image:
        image.load()  # raises on a truncated file
    return True


# --- phantoms ---------------------------------------------------------------------------------

PHANTOMS = ("phantoms", "--modality", "cxr", "--size", "512")


def partial_images(parent: Path) -> int:
    return sum(len(list(tmp.glob("*.png"))) for tmp in hidden_temporaries(parent, "cxr"))


def test_phantoms_sigterm_removes_its_temporary_folder(tmp_path):
    out = tmp_path / "cxr"
    run = start(*PHANTOMS, "--n", "5000", "--out", str(out))
    wait_for(lambda: partial_images(tmp_path) >= 3, run)
    code, err = kill(run, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM and "terminated" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no output under the real name, no temporary folder


def test_phantoms_sigkill_leftover_is_removed_by_the_next_run(tmp_path):
    out = tmp_path / "cxr"
    run = start(*PHANTOMS, "--n", "5000", "--out", str(out))
    wait_for(lambda: partial_images(tmp_path) >= 3, run)
    code, _ = kill(run, signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert not out.exists() and len(hidden_temporaries(tmp_path, "cxr")) == 1  # the killed run's
    rerun = subprocess.run([sys.executable, "-m", "pipelines", *PHANTOMS, "--n", "3", "--seed", "4",
                            "--out", str(out)], cwd=ROOT, env=ENV, capture_output=True, text=True,
                           timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["cxr"]  # the stale folder is gone
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in rows] == [4, 5, 6]
    assert np.array_equal(np.asarray(Image.open(out / rows[2]["file_name"]).convert("RGB")),
                          phantom("cxr", 6, 512).image)


def test_phantoms_leaves_a_live_runs_temporary_folder_alone(tmp_path):
    out = tmp_path / "cxr"
    first = start(*PHANTOMS, "--n", "5000", "--out", str(out))
    try:
        wait_for(lambda: partial_images(tmp_path) >= 1, first)
        other = subprocess.run([sys.executable, "-m", "pipelines", *PHANTOMS, "--n", "2", "--out",
                                str(tmp_path / "other")], cwd=ROOT, env=ENV, capture_output=True,
                               text=True, timeout=120)
        assert other.returncode == 0, other.stderr
        second = subprocess.run([sys.executable, "-m", "pipelines", *PHANTOMS, "--n", "2", "--out",
                                 str(tmp_path / "cxr")], cwd=ROOT, env=ENV, capture_output=True,
                                text=True, timeout=120)
        assert second.returncode == 0, second.stderr  # a rival run for the same name: allowed,
        assert first.poll() is None  # and the first run's folder was not taken from it
        assert len(hidden_temporaries(tmp_path, "cxr")) == 1
    finally:
        kill(first, signal.SIGTERM)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cxr", "other"]


# --- synthesize -------------------------------------------------------------------------------

def test_synthesize_killed_then_resumed_is_whole(tmp_path, micro_model_folder):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"prompts": [{"anatomy": "chest x-ray", "labels": {"effusion": 0}},
                                            {"anatomy": "chest x-ray with pleural effusion",
                                             "labels": {"effusion": 1}}], "steps": 30}))
    out, n = tmp_path / "synthetic", 24
    command = ("synthesize", "--spec", str(spec), "--n", str(n), "--out", str(out),
               "--model", str(micro_model_folder), "--seed", "3")
    images = lambda: sorted((out / "images").glob("[0-9]*.png")) if (out / "images").is_dir() else []  # noqa: E731
    run = start(*command)
    wait_for(lambda: len(images()) >= 2, run)
    code, err = kill(run, signal.SIGKILL)  # SIGTERM's path (cleanup handlers) is the phantoms test's
    assert code == -signal.SIGKILL, err[-2000:]
    assert len(images()) < n, "the run finished before the kill; make it longer"
    assert all(decodes_whole(p) for p in images())  # nothing half-written under a real name
    # What a kill inside write_atomic leaves: a hidden partial file beside the real names.
    (out / "images" / f".{n - 1:06d}.png.k1ll3d.tmp").write_bytes(b"\x89PNG\r\n")
    rerun = subprocess.run([sys.executable, "-m", "pipelines", *command, "--json"], cwd=ROOT, env=ENV,
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    summary = json.loads(rerun.stdout)
    assert summary["total"] == n and 0 < summary["written"] < n  # resumed, not restarted
    rows = validate_imagefolder(out)
    assert [r["index"] for r in rows] == list(range(n)) and [r["seed"] for r in rows] == list(range(3, 3 + n))
    assert all(decodes_whole(out / r["file_name"]) for r in rows)
    assert not list((out / "images").glob(".*")) and not list(out.glob(".*"))  # no temporary files left
    assert not list(out.glob("metadata-*.jsonl"))
