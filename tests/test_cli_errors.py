"""Bad input to the command line: one line on stderr, exit 2, no traceback, nothing written, and
refused before any model (or torch) is loaded.

All cases run in one fresh interpreter (a real `pipelines.cli.main` per case, stderr captured), so
"torch was never imported" is a fact about that process, not about the test runner's.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECONDS = 1.0  # the bound for a refusal (issue 32), model loading excluded by design

# (command line with {tmp} for the case's folder, text the one-line message must hold)
CASES = [
    # generate
    ("generate --anatomy x --out {tmp}/FILE/x.png", "FILE is a file, not a folder"),
    ("generate --anatomy x --out {tmp}/FILE/a/b/x.png", "FILE is a file, not a folder"),
    ("generate --anatomy x --out /proc/mededit/x.png", "cannot write in /proc"),
    ("generate --anatomy x --out {tmp}/folder.png", "is a folder; give a file name"),
    ("generate --anatomy x --out {tmp}/x.jpg", "must be a .png file"),
    ("generate --anatomy x --seed -1 --out {tmp}/x.png", "seed must be between 0 and 4294967295, got -1"),
    ("generate --anatomy x --seed 4294967296 --out {tmp}/x.png", "seed must be between"),
    ("generate --anatomy x --seed abc --out {tmp}/x.png", "argument --seed: invalid int value: 'abc'"),
    ("generate --anatomy x --seed 1.5 --out {tmp}/x.png", "argument --seed: invalid int value"),
    ("generate --anatomy x --steps 0 --out {tmp}/x.png", "steps must be between 1 and 100, got 0"),
    ("generate --anatomy x --steps 101 --out {tmp}/x.png", "steps must be between 1 and 100"),
    ("generate --anatomy x --anatomy-scale nan --out {tmp}/x.png", "anatomy strength must be finite"),
    ("generate --anatomy x --style-scale inf --out {tmp}/x.png", "style strength must be finite"),
    ("generate --anatomy x --style-scale -1 --out {tmp}/x.png", "style strength must be between 0 and 15"),
    ("generate --out {tmp}/x.png", "give an anatomy prompt, a style prompt, or both"),
    ("generate --anatomy x", "the following arguments are required: --out"),
    ("generate --anatomy x --bogus 1 --out {tmp}/x.png", "unrecognized arguments: --bogus 1"),
    ("generate --anatomy x --model {tmp}/no-such-model --out {tmp}/x.png", "no such folder"),
    ("generate --anatomy x --model {tmp}/FILE --out {tmp}/x.png", "is a file"),
    (["generate", "--anatomy", "lungs\x01", "--out", "{tmp}/x.png"], "control character (U+0001)"),
    (["generate", "--anatomy", "y" * 401, "--out", "{tmp}/x.png"], "at most 400 are accepted"),
    # series
    ("series --anatomy x --frames 1 --out {tmp}/s", "frames must be between 2 and 64, got 1"),
    ("series --anatomy x --frames 65 --out {tmp}/s", "frames must be between 2 and 64"),
    ("series --anatomy x --mode sideways --out {tmp}/s", "unknown series mode 'sideways'"),
    ("series --anatomy x --control-points 1 --out {tmp}/s", "control points must be between 2 and 10"),
    ("series --anatomy x --bend 2 --out {tmp}/s", "bend must be between -1 and 1"),
    ("series --anatomy x --attribute hair=abc --out {tmp}/s", "--attribute takes NAME=SCALE"),
    ("series --anatomy x --attribute pacemaker --out {tmp}/s", "got 'pacemaker'; e.g. pacemaker=1 to add it"),
    ("series --anatomy x --attribute hair=9 --out {tmp}/s", "slider hair must be between -3 and 3"),
    ("series --anatomy x --swap-at 1.5 --out {tmp}/s", "swap point must be between 0 and 1"),
    ("series --anatomy x --locality 0.95 --out {tmp}/s", "locality must be between 0 and 0.9"),
    ("series --anatomy x --seed -3 --out {tmp}/s", "seed must be between"),
    ("series --anatomy x --out {tmp}/FILE", "exists and is not a folder"),
    ("series --anatomy x --out {tmp}/FILE/s", "FILE is a file, not a folder"),
    ("series --anatomy x --out /proc/mededit/s", "cannot write in /proc"),
    # attribute names, read from the model's files before it loads (pipelines/model/offered.py)
    ("edit --anatomy x --attribute bogus=1 --out {tmp}/e", "unknown attribute 'bogus'; this model has: melanoma, hair"),
    ("series --anatomy x --attribute hair=1 --attribute bogus=-1 --out {tmp}/s", "unknown attribute 'bogus'"),
    ("edit --anatomy x --attribute hair=1 --model {tmp}/mine --out {tmp}/e",
     "unknown attribute 'hair'; this model has: effusion"),
    ("edit --anatomy x --attribute bogus=1 --model {tmp}/pixart --out {tmp}/e", "this model has: melanoma, hair"),
    # slider scales, against the range the model's mededit.json stores (scripts/slider_ranges.py)
    ("edit --anatomy x --attribute effusion=2 --model {tmp}/mine --out {tmp}/e",
     "slider effusion must be between -1 and 1.5 for the model mine (the range where it was measured"),
    ("series --anatomy x --attribute effusion=-1.5 --model {tmp}/mine --out {tmp}/s",
     "slider effusion must be between -1 and 1.5 for the model mine"),
    ("edit --anatomy x --attribute vignette=3 --out {tmp}/e",  # the shipped model's measured range
     "slider vignette must be between -1 and 1.5 for the model mededit-default"),
    # phantoms
    ("phantoms --modality cxr --n 2 --seed -5 --out {tmp}/p", "--seed must be between 0 and"),
    ("phantoms --modality cxr --n 2 --seed 4294967295 --out {tmp}/p", "--seed must be between 0 and 4294967294"),
    ("phantoms --modality cxr --n 0 --out {tmp}/p", "choose a positive number of images"),
    ("phantoms --modality cxr --n 10000001 --out {tmp}/p", "at most 10000000"),
    ("phantoms --modality cxr --n two --out {tmp}/p", "argument --n: invalid int value: 'two'"),
    ("phantoms --modality pet --n 2 --out {tmp}/p", "unknown modality 'pet'"),
    ("phantoms --modality cxr --n 2 --size 8 --out {tmp}/p", "32 to 512"),
    ("phantoms --modality cxr --n 2 --out {tmp}/full", "is not empty"),
    ("phantoms --modality cxr --n 2 --out {tmp}/FILE", "exists and is not a folder"),
    ("phantoms --modality cxr --n 2 --out {tmp}/FILE/p", "FILE is a file, not a folder"),
    ("phantoms --modality cxr --n 2 --out /proc/mededit/p", "cannot write in /proc"),
    ("phantoms --n 2 --out {tmp}/p", "the following arguments are required: --modality"),
    # synthesize
    ("synthesize --spec {tmp}/spec.json --n 2 --out /proc/mededit/s", "cannot write in /proc"),
    ("synthesize --spec {tmp}/spec.json --n 2 --out {tmp}/FILE", "exists and is not a folder"),
    ("synthesize --spec {tmp}/spec.json --n 2 --out {tmp}/FILE/s", "FILE is a file, not a folder"),
    ("synthesize --spec {tmp}/spec.json --n 0 --out {tmp}/s", "--n must be a whole number from 1"),
    ("synthesize --spec {tmp}/spec.json --n 2 --seed -1 --out {tmp}/s", "--seed must be a whole number from 0"),
    ("synthesize --spec {tmp}/spec.json --n 2 --model {tmp}/no-such --out {tmp}/s", "no such folder"),
    ("synthesize --spec {tmp}/none.json --n 2 --out {tmp}/s", "does not exist"),
    ("synthesize --spec {tmp}/full --n 2 --out {tmp}/s", "is not a file"),
    ("synthesize --spec {tmp}/deep.json --n 2 --out {tmp}/s", "nested 5000 levels deep"),
    ("synthesize --spec {tmp}/broken.json --n 2 --out {tmp}/s", "is not valid JSON"),
    ("synthesize --spec {tmp}/bad_entry.json --n 2 --out {tmp}/s", "spec entry 0 weight must be above 0"),
    ("synthesize --spec {tmp}/spec.json --n many --out {tmp}/s", "argument --n/--count: invalid int value"),
    # convert and the dispatcher
    ("convert csv --images {tmp} --out {tmp}/c --image-column p", "required: --csv"),
    ("convert nothing", "invalid choice: 'nothing'"),
    ("convert validate {tmp}/FILE", "metadata.jsonl is missing"),
    ("painting --n 2", "invalid choice: 'painting'"),
    ("", "the following arguments are required: COMMAND"),
]

DRIVER = r"""
import contextlib, io, json, sys, time, traceback
from pipelines.cli import main
results = []
for argv in json.load(sys.stdin):
    err = io.StringIO()
    began = time.perf_counter()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    except BaseException:
        code, err = "raised", io.StringIO(traceback.format_exc())
    results.append({"code": code, "stderr": err.getvalue(), "seconds": time.perf_counter() - began,
                    "torch": "torch" in sys.modules})
json.dump(results, sys.stdout)
"""


def argv_of(case, folder: Path) -> list[str]:
    words = case.split() if isinstance(case, str) else case
    return [w.replace("{tmp}", str(folder)) for w in words]


def make_fixtures(folder: Path) -> None:
    folder.mkdir()
    (folder / "FILE").write_text("a file where a folder is expected\n")
    (folder / "full").mkdir()
    (folder / "folder.png").mkdir()
    (folder / "full" / "keep.txt").write_text("keep\n")
    (folder / "spec.json").write_text(json.dumps([{"anatomy": "chest x-ray"}]))
    (folder / "deep.json").write_text("[" * 5000 + "]" * 5000)
    (folder / "broken.json").write_text('[{"anatomy": ')
    (folder / "bad_entry.json").write_text(json.dumps([{"anatomy": "x", "weight": 0}]))
    (folder / "mine").mkdir()  # a MedEdit model folder's description, with one attribute
    (folder / "mine" / "mededit.json").write_text(json.dumps({
        "name": "mine", "image_size": 64, "text_encoder": "minilm", "conditioning": "separate",
        "attributes": [{"name": "effusion", "modality": "cxr", "channel": "anatomy", "phrase": "effusion",
                        "range": [-1.0, 1.5]}],
        "defaults": {"steps": 20, "anatomy_scale": 3.0, "style_scale": 3.0, "swap_at": 0.2}}))
    (folder / "pixart").mkdir()  # a diffusers PixArt pipeline folder: the registry's attributes
    (folder / "pixart" / "model_index.json").write_text(json.dumps({"_class_name": "PixArtAlphaPipeline"}))


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli_errors")
    folders = [base / f"case{i}" for i in range(len(CASES))]
    before = []
    for folder in folders:
        make_fixtures(folder)
        before.append(snapshot(folder))
    argvs = [argv_of(case, folder) for (case, _), folder in zip(CASES, folders)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MEDEDIT_MODEL": ""}
    done = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(argvs), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)
    for result, folder, old in zip(results, folders, before):
        result["unchanged"] = snapshot(folder) == old
    return results


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c if isinstance(c, str) else " ".join(c)[:60]
                                                          for c, _ in CASES])
def test_bad_input_is_one_line_exit_2_before_any_model_loads(outcomes, index):
    result, (_, message) = outcomes[index], CASES[index]
    assert result["code"] == 2, result["stderr"]
    assert "Traceback" not in result["stderr"] and "usage:" not in result["stderr"]
    assert result["stderr"].startswith("error: ") and result["stderr"].count("\n") == 1, result["stderr"]
    assert message in result["stderr"]
    assert result["unchanged"], "the case wrote or removed files"
    assert not result["torch"], "torch was imported before the input was refused"
    assert result["seconds"] < SECONDS, f"{result['seconds']:.2f} s"


def test_an_uncached_hub_model_offline_is_refused_before_torch(tmp_path):
    """A Hub repo id's files are looked for (cache, or download) before torch loads: offline and
    not cached, one line, where it took the whole import and load path (17-25 s) before."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MEDEDIT_MODEL": "", "HF_HUB_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf")}
    argv = ["generate", "--anatomy", "x", "--model", "someone/not-cached", "--out", str(tmp_path / "x.png")]
    done = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps([argv]), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    result = json.loads(done.stdout)[0]
    assert result["code"] == 2 and result["stderr"].count("\n") == 1, result["stderr"]
    assert "'someone/not-cached' (revision main) is not in the local Hugging Face cache" in result["stderr"]
    assert not result["torch"] and not (tmp_path / "x.png").exists()


def test_the_entry_point_itself_gives_one_line_and_exit_2(tmp_path):
    """`python -m pipelines`, not only main(): argparse's errors and a checked value alike."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for argv in (["generate", "--seed", "x", "--out", "x.png"], ["phantoms", "--modality", "cxr", "--n", "2",
                                                                   "--seed", "-5", "--out", "p"]):
        done = subprocess.run([sys.executable, "-m", "pipelines", *argv], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_upload_evaluation_script_refuses_as_the_commands_do(tmp_path):
    """scripts/eval_uploads.py wraps `eval --uploads --json` and `bench --json`: the same one line."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MEDEDIT_MODEL": ""}
    script = str(ROOT / "scripts" / "eval_uploads.py")
    for argv, message in ((["--seeds", "0"], "--seeds must be between 1 and 50000, got 0"),
                          (["--directions", "add,up"], "unknown direction 'up'"),
                          (["--bench", "--repeats", "0"], "--repeats must be between 1 and 100, got 0")):
        done = subprocess.run([sys.executable, script, *argv, "--out", "u.json"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and done.stdout == "", done.stderr
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1 and message in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_help_still_prints_usage_and_exits_0(capsys):
    from pipelines.cli import main

    with pytest.raises(SystemExit) as ended:
        main(["phantoms", "--help"])
    assert ended.value.code == 0 and "--modality" in capsys.readouterr().out
