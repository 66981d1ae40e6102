"""`eval` and `bench` refuse bad values with one line and exit 2 before torch or a model loads.

All cases run in one fresh interpreter, so "torch was never imported" is a fact about that process.
--model names an empty folder: had a case got as far as loading, it would fail there with another
message.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NO_MODEL = ["--model", "{tmp}/empty"]

CASES = [  # (arguments after the command, text the one-line message must hold)
    ("eval --seeds 0", "--seeds must be between 1 and 100000, got 0"),
    ("eval --seeds 100001", "--seeds must be between 1 and 100000"),
    ("eval --seeds many", "argument --seeds: invalid int value: 'many'"),
    ("eval --steps 0", "--steps must be between 1 and 100, got 0"),
    ("eval --steps 101", "--steps must be between 1 and 100"),
    ("eval --batch 0", "--batch must be between 1 and 1024"),
    ("eval --swap-at 1.5", "--swap-at must be between 0 and 1"),
    ("eval --locality 0.95", "--locality must be between 0 and 0.9"),
    ("eval --style-scale nan", "--style-scale must be finite"),
    ("eval --anatomy-scale -1", "--anatomy-scale must be between 0 and 15"),
    ("eval --seed-range all", "argument --seed-range: invalid choice: 'all'"),
    ("eval --attribute pneumothorax", "unknown attribute 'pneumothorax'"),
    ("eval --modality cxr --attribute ink", "'ink' belongs to dermoscopy, which is not evaluated"),
    ("eval --out {tmp}/FILE/eval.json", "FILE is a file, not a folder"),
    ("eval --out {tmp}", "is a folder; give a file name"),
    ("bench --repeats 0", "--repeats must be between 1 and 100, got 0"),
    ("bench --repeats x", "argument --repeats: invalid int value: 'x'"),
    ("bench --model {tmp}/FILE", "is a file"),
    ("bench --threads 0", "--threads must be between 1 and 256, got 0"),
    ("bench --out {tmp}/FILE/bench.json", "FILE is a file, not a folder"),
    ("bench --out {tmp}", "is a folder; give a file name"),
    ("eval --threads 0", "--threads must be between 1 and 256, got 0"),
    # eval --uploads: a row draws two blocks of --seeds (adding, removing)
    ("eval --uploads --seeds 50001", "--seeds must be between 1 and 50000, got 50001"),
    ("eval --uploads --seeds 0", "--seeds must be between 1 and 50000, got 0"),
    ("eval --uploads --directions add,sideways", "--directions: unknown direction 'sideways'"),
    ("eval --uploads --directions ,", "--directions: unknown direction ''"),
    ("eval --uploads --edit paint", "argument --edit: invalid choice: 'paint'"),
    ("eval --uploads --attributes hair,,ink", "--attribute: an empty name in 'hair,,ink'"),
    ("eval --uploads --attributes hair,pneumothorax", "unknown attribute 'pneumothorax'"),
    ("eval --uploads --modality cxr --attributes hair", "'hair' belongs to dermoscopy, which is not evaluated"),
    ("eval --uploads --seed-range all", "argument --seed-range: invalid choice: 'all'"),
    ("eval --uploads --steps 0", "--steps must be between 1 and 100, got 0"),
    ("eval --uploads --swap-at -0.1", "--swap-at must be between 0 and 1"),
    ("eval --uploads --locality 0.95", "--locality must be between 0 and 0.9"),
    ("eval --uploads --batch 2000", "--batch must be between 1 and 1024"),
    ("eval --uploads --threads 0", "--threads must be between 1 and 256, got 0"),
    ("eval --uploads --out {tmp}/FILE/uploads.json", "FILE is a file, not a folder"),
    ("eval --uploads --model {tmp}/FILE", "is a file"),
    ("eval --directions add", "--directions applies to eval --uploads only"),
    ("eval --edit slider", "--edit applies to eval --uploads only"),
    ("eval --refresh 0.2", "--refresh applies to eval --uploads only"),
    ("eval --uploads --refresh 1.5", "--refresh must be between 0 and 1, got 1.5"),
]

DRIVER = r"""
import contextlib, io, json, sys, traceback
from pipelines.cli import main
results = []
for argv in json.load(sys.stdin):
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    except BaseException:
        code, err = "raised", io.StringIO(traceback.format_exc())
    results.append({"code": code, "stderr": err.getvalue(), "torch": "torch" in sys.modules})
json.dump(results, sys.stdout)
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval_bench_cli")
    (folder / "FILE").write_text("a file where a folder is expected\n")
    (folder / "empty").mkdir()
    argvs = []
    for case, _ in CASES:
        command, *rest = case.split()
        argvs.append([w.replace("{tmp}", str(folder)) for w in [command, *NO_MODEL, *rest]])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MEDEDIT_MODEL": ""}
    done = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(argvs), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in folder.rglob("*")) == ["FILE", "empty"]  # nothing written
    return json.loads(done.stdout)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c for c, _ in CASES])
def test_bad_values_are_refused_in_one_line_before_torch_loads(outcomes, index):
    result, (_, message) = outcomes[index], CASES[index]
    assert result["code"] == 2, result["stderr"]
    assert result["stderr"].startswith("error: ") and result["stderr"].count("\n") == 1, result["stderr"]
    assert message in result["stderr"]
    assert not result["torch"], "torch was imported before the value was refused"


def test_good_values_get_as_far_as_loading_the_model(tmp_path, capsys):
    """The control for the cases above: with every value valid, the empty folder is what fails."""
    from pipelines.cli import main

    for argv in (["eval", "--seeds", "1", "--steps", "1", "--seed-range", "tuning"],
                 ["eval", "--attributes", "hair,ink", "--attribute", "effusion"],
                 ["eval", "--uploads", "--seeds", "50000", "--attributes", "hair,ink", "--directions", "remove,add",
                  "--edit", "slider", "--steps", "1", "--swap-at", "0", "--locality", "0.9", "--threads", "1",
                  "--out", str(tmp_path / "new" / "uploads.json")],
                 ["bench", "--repeats", "1", "--threads", "1"]):
        assert main([*argv, "--model", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert str(tmp_path) in err and "must be" not in err, err


@pytest.fixture(scope="module")
def two_step_model(micro_model_folder, tmp_path_factory):
    """The micro model sampling in 2 steps: bench's 16-frame series, stock ones included, stay quick."""
    from tests.micro_model import copy_with_steps
    return copy_with_steps(micro_model_folder, tmp_path_factory.mktemp("two-step") / "micro-two-step", 2)


def test_bench_reports_the_pipeline_and_an_upload_in_one_json(two_step_model, tmp_path, capsys):
    from pipelines.cli import main
    from pipelines.cli.bench import print_table

    out = tmp_path / "bench.json"
    assert main(["bench", "--model", str(two_step_model), "--repeats", "1", "--threads", "1", "--json",
                 "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads(out.read_text())
    assert set(report["operations"]) == {"pair", "reedit", "series16_latent", "series16_embedding"}
    uploads = report["uploads"]
    assert uploads["upload_to_first_edit_s"] > 0 and uploads["reedit_s"] > 0 and uploads["threads"] == 1
    assert uploads["steps"] == report["steps"] and report["load_s"] > 0
    print_table(report)
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("upload (256 px PNG) to its first edit ") and "median of 1 after a warm-up" in last
