"""scripts/loadtest.py: its file checks catch empty and truncated downloads, and a small run
against a started app (2 clients x 3 requests, micro model, twin uploads of one file sent at once
among them) ends with no error and no mismatch,
and reports the server's memory at its checkpoints and, with --timeline, each request's steps."""

import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("loadtest", ROOT / "scripts" / "loadtest.py")
loadtest = importlib.util.module_from_spec(spec)
spec.loader.exec_module(loadtest)


def png_bytes(seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_png_check_tells_whole_from_empty_and_truncated(tmp_path):
    whole, empty, cut = tmp_path / "whole.png", tmp_path / "empty.png", tmp_path / "cut.png"
    whole.write_bytes(png_bytes())
    empty.write_bytes(b"")
    cut.write_bytes(png_bytes()[:-40])  # what a download cut short by a rewrite looks like
    copy = tmp_path / "copy.png"
    copy.write_bytes(whole.read_bytes())
    assert loadtest.png_digest(whole) == loadtest.png_digest(copy)
    for bad in (empty, cut, tmp_path / "missing.png"):
        with pytest.raises(loadtest.BadFile):
            loadtest.png_digest(bad)
    other = tmp_path / "other.png"
    other.write_bytes(png_bytes(1))
    assert loadtest.png_digest(other) != loadtest.png_digest(whole)  # pixels decide, bitwise


def test_zip_check_needs_its_crcs_and_manifest_hashes(tmp_path):
    import hashlib

    frame = png_bytes()
    manifest = {"files": [{"path": "frames/frame_000.png", "sha256": hashlib.sha256(frame).hexdigest()}]}
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("frames/frame_000.png", frame)
        archive.writestr("manifest.json", json.dumps(manifest))
    assert loadtest.zip_digest(good)
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    lying = tmp_path / "lying.zip"
    with zipfile.ZipFile(lying, "w") as archive:
        archive.writestr("frames/frame_000.png", png_bytes(2))
        archive.writestr("manifest.json", json.dumps(manifest))
    for bad in (truncated, lying):
        with pytest.raises(loadtest.BadFile):
            loadtest.zip_digest(bad)


def test_workload_mixes_kinds_and_repeats_requests(tmp_path):
    templates = [{"anatomy": "a", "seed": 0}, {"anatomy": "b", "seed": 0}]
    plan = loadtest.workload(8, 25, steps=4, frames=3, seeds=3, templates=templates)
    items = [item for mine in plan for item in mine]
    assert len(items) == 200 and {kind for kind, _ in items} == set(loadtest.KINDS)
    keys = [loadtest.request_key(*item) for item in items]
    assert len(set(keys)) < len(keys) / 2  # identical requests recur, across clients and in time
    at_once = [{loadtest.request_key(*plan[c][j]) for c in range(8)} for j in range(25)]
    assert all(1 < len(step) < 8 for step in at_once)  # some identical, some different, at once
    with_uploads = loadtest.workload(8, 25, steps=4, frames=3, seeds=3, templates=templates,
                                      upload=loadtest.write_upload(tmp_path / "x.png"))
    twins = [kwargs["image"] for mine in with_uploads for kind, kwargs in mine if kind == loadtest.UPLOAD_KIND]
    assert len(twins) == 40 and all(t == twins[0] for t in twins)  # one file, sent by every client
    assert with_uploads[0][0] == with_uploads[1][0] and with_uploads[0][0][0] == loadtest.UPLOAD_KIND  # at once


def test_the_largest_series_come_from_one_more_client_at_the_servers_budget():
    from app.serving import ServerLimits
    from pipelines.editing.cost import request_work
    from pipelines.editing.requests import Edit, Sampling, Series

    plan = loadtest.workload(8, 3, steps=4, frames=3, seeds=3, templates=[{}], largest=3)
    assert len(plan) == 9 and [kind for kind, _ in plan[-1]] == [loadtest.LARGEST_KIND] * 3
    modes = [kwargs["mode"] for _, kwargs in plan[-1]]
    assert modes == ["embedding", "latent", "embedding"] and len({k["seed"] for _, k in plan[-1]}) == 3
    budget = ServerLimits().request_budget
    for _, k in plan[-1]:
        work = request_work(Sampling(k["anatomy"], k["style"], k["seed"], k["steps"], k["anatomy_scale"],
                                     k["style_scale"]), Edit(to_style=k["to_style"], swap_at=k["swap_at"],
                                                             locality=k["locality"]),
                            Series(k["frames"], k["mode"], k["control_points"]))
        assert budget * 0.9 < work.units <= budget  # the most a request may be, not a small one


def test_a_small_run_against_a_started_app_has_no_error_and_no_mismatch(micro_model_folder, tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "loadtest.py"), "--clients", "2",
                           "--requests", "3", "--steps", "2", "--frames", "2", "--checkpoints", "2,6", "--uploads",
                           "--timeline", "--model", str(micro_model_folder)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["requests"] == 6 and report["distinct_requests"] >= 2 and report["config"]["uploads"]
    assert report["latency_s"][loadtest.UPLOAD_KIND]["n"] == 2  # the twins, sent at once
    assert report["errors"] == report["bad_files"] == report["mismatches"] == 0
    assert report["config"]["replay"] == "a fresh server"
    assert report["latency_s"]["all"]["n"] == 6 and report["latency_s"]["all"]["max"] > 0
    assert report["refused_over_budget"] == report["stopped_at_time_limit"] == 0
    parts = report["plain_edit_parts_s"]  # each plain edit's own timing, from its answer's settings
    assert parts["computing"]["n"] == 2 and parts["outside"]["n"] == 2
    slowest = parts["slowest"]
    assert slowest["seconds"] >= slowest["outside"] + slowest["computing"] and slowest["computing"] > 0
    timeline = report["timeline"]  # --timeline: when the client saw each step of each request
    assert len(timeline["requests"]) == 6 and timeline["plain_edit_outside_parts_s"]["queue"]["n"] == 2
    for row in timeline["requests"]:
        assert row["submitted"] <= row["started"] <= row["completed"] <= row["answered"]
    edit = timeline["slowest_plain_edit"]
    assert abs(edit["queue"] + edit["slot"] + edit["download"] - slowest["outside"]) < 0.05  # outside, in parts
    memory = report["server_rss_mb"]
    assert memory["before_load"] > 50 and memory["peak"] >= memory["before_load"]
    assert set(memory["checkpoints"]) == {"2", "6"} and all(mb > 50 for mb in memory["checkpoints"].values())
    assert memory["last_over_first_checkpoint"] == round(memory["checkpoints"]["6"] / memory["checkpoints"]["2"], 3)
    assert report["files_kept_in"] is None and not list(tmp_path.glob("mededit-loadtest-*"))  # nothing left behind
    # nor gradio_client's empty per-download folders (named by 20 random bytes)
    assert not [p.name for p in tmp_path.iterdir() if re.fullmatch("[0-9a-f]{40}", p.name)]


def test_where_a_requests_time_went_is_told_from_the_servers_own_timing():
    timing = lambda total, waiting, behind: {"total": total, "before": 0.0, "waiting": waiting,  # noqa: E731
                                             "behind_series": behind, "computing": total - waiting, "writing": 0.0}
    records = [{"seconds": 3.0, "server": {**timing(2.0, 1.5, 1.0), "outside": 1.0}},
               {"seconds": 9.0, "server": {**timing(4.0, 1.0, 0.5), "outside": 5.0}},
               {"seconds": 1.0, "error": "refused"}]  # no answer, no timing: left out
    parts = loadtest.where_the_time_went(records)
    assert parts["outside"]["n"] == 2 and parts["outside"]["max"] == 5.0 and parts["behind_series"]["max"] == 1.0
    assert parts["slowest"] == {"seconds": 9.0, "outside": 5.0, "before": 0.0, "waiting": 1.0,
                                "behind_series": 0.5, "computing": 3.0, "writing": 0.0}
    assert loadtest.where_the_time_went(records[2:]) == {}


def test_a_timeline_tells_queue_slot_and_download_apart():
    import asyncio
    from datetime import datetime

    from gradio_client.utils import OutputUpdate, Status, StatusUpdate

    def job(*seen):  # a gradio_client Job as far as job_timeline reads it: its status messages
        updates = asyncio.Queue()
        for code, at, *rank in seen:
            updates.put_nowait(StatusUpdate(code=code, rank=rank[0] if rank else None, queue_size=None, eta=None,
                                            success=None, time=datetime.fromtimestamp(at), progress_data=None,
                                            log=None))
        updates.put_nowait(OutputUpdate(outputs=[], success=True))
        return type("Job", (), {"communicator": type("Communicator", (), {"updates": updates})})()

    t = 1_000_000.0
    edit = loadtest.job_timeline(job((Status.IN_QUEUE, t + 0.1, 3), (Status.IN_QUEUE, t + 2, 1),
                                     (Status.PROCESSING, t + 50), (Status.PROGRESS, t + 51),
                                     (Status.FINISHED, t + 56)), t, t + 57.5, {"total": 4.0})
    assert edit["rank"] == 3 and edit["queued"] == t + 0.1  # the first estimate
    assert (edit["queue"], edit["slot"], edit["download"]) == (50.0, 2.0, 1.5)
    ahead = loadtest.job_timeline(job((Status.PROCESSING, t - 5), (Status.FINISHED, t + 40)), t - 6, t + 41,
                                  {"total": 44.0})
    series = loadtest.job_timeline(job((Status.PROCESSING, t), (Status.FINISHED, t + 30)), t, t + 31, None)
    report = loadtest.timeline_report([{"kind": "edit", "seconds": 57.5, "timeline": edit, "server": {"total": 4.0}},
                                       {"kind": "generate", "seconds": 47.0, "timeline": ahead,
                                        "server": {"total": 44.0}},
                                       {"kind": "series", "seconds": 31.0, "timeline": series}])
    assert [row["kind"] for row in report["requests"]] == ["generate", "edit", "series"]
    assert report["requests"][1]["submitted"] == 6.0 and "slot" not in report["requests"][2]  # no server timing
    slowest = report["slowest_plain_edit"]
    assert slowest["queue"] == 50.0 and report["plain_edit_outside_parts_s"]["download"]["max"] == 1.5
    assert slowest["light_slots_meanwhile"] == [{"kind": "generate", "started": 1.0, "completed": 46.0,
                                                 "handler": 44.0}]  # a series holds no light slot


def test_checkpoints_are_checked_before_the_run():
    args = loadtest.parse_args(["--clients", "4", "--requests", "50", "--checkpoints", "200, 20"])
    assert args.checkpoints == (20, 200) and args.replay
    for bad in ("201", "0", "a,b"):
        with pytest.raises(SystemExit):
            loadtest.parse_args(["--clients", "4", "--requests", "50", "--checkpoints", bad])
