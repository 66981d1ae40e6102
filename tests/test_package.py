"""`pip install .`: the wheel holds the library and the shipped weights, and its `mededit` command
runs from any folder, finding the weights inside the installed package.

The wheel is built from a copy of the sources (pip builds in the tree it is given) without build
isolation or dependencies (offline, and they are this interpreter's), then installed with
`pip install --target` into a folder of its own; every command runs from another folder with only
that folder on PYTHONPATH, so nothing can come from the checkout.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "requirements.txt", "pipelines", "assets")
SHIPPED = ("mededit-default", "classifier")  # assets/ folders the code reads; the rest is the README's


def pip(*args, cwd):
    done = subprocess.run([sys.executable, "-m", "pip", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PIP_NO_INDEX": "1"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("package")
    source = base / "source"
    source.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                             if (ROOT / name).is_dir() else {}))
    pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(base / "dist"), ".", cwd=source)
    wheel = next((base / "dist").glob("mededit-*.whl"))
    pip("install", "--no-deps", "--target", str(base / "site"), str(wheel), cwd=base)
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(base / "site"), "MEDEDIT_MODEL": "",
           "OMP_NUM_THREADS": "1", "MEDEDIT_THREADS": "1"}
    return {"wheel": wheel, "site": base / "site", "cwd": elsewhere, "env": env}


def run(installed, *argv, timeout=300):
    command = installed["site"] / "bin" / "mededit"
    return subprocess.run([str(command), *argv], cwd=installed["cwd"], env=installed["env"],
                          capture_output=True, text=True, timeout=timeout)


def test_the_wheel_holds_the_weights_and_the_command(installed):
    with zipfile.ZipFile(installed["wheel"]) as wheel:
        names = set(wheel.namelist())
        entry_points = next(wheel.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    shipped = {f"pipelines/{p.relative_to(ROOT)}" for folder in SHIPPED for p in (ROOT / "assets" / folder).rglob("*")
               if p.is_file()}
    assert "pipelines/assets/mededit-default/transformer/diffusion_pytorch_model.safetensors" in shipped
    assert shipped <= names, sorted(shipped - names)
    assert not any(n.endswith(("screenshot.png", "phantom_grid.png")) for n in names)
    assert "pipelines/cli/__init__.py" in names and "pipelines/data/phantoms/__init__.py" in names
    assert "mededit = pipelines.cli:main" in entry_points
    assert not any(n.startswith(("app/", "tests/")) for n in names)


def test_every_package_of_the_tree_is_in_the_wheel(installed):
    """pyproject.toml lists the packages by hand (assets/ maps onto pipelines.assets): a new
    subpackage must be added there, or the installed command would lack it."""
    in_tree = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "pipelines").rglob("__init__.py")}
    with zipfile.ZipFile(installed["wheel"]) as wheel:
        in_wheel = {str(Path(n).parent) for n in wheel.namelist() if n.endswith("/__init__.py")}
    assert in_tree <= in_wheel


def test_the_installed_command_runs_from_another_folder(installed):
    helped = run(installed, "--help", timeout=60)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: mededit"), helped.stderr
    refused = run(installed, "generate", "--seed", "x", "--out", "x.png", timeout=60)
    assert refused.returncode == 2 and refused.stderr.startswith("error: mededit generate: argument --seed")
    located = subprocess.run([sys.executable, "-c", "import pipelines; from pipelines.core.files import ASSETS; "
                              "print(pipelines.__file__); print(ASSETS)"], cwd=installed["cwd"],
                             env=installed["env"], capture_output=True, text=True, timeout=60)
    module, assets = located.stdout.split()
    assert Path(module).is_relative_to(installed["site"]) and Path(assets) == installed["site"] / "pipelines/assets"


def test_the_installed_command_generates_with_the_shipped_weights(installed):
    """One real run: the weights load from the installed package, and the image's provenance names
    the same weights revision as the checkout's."""
    done = run(installed, "generate", "--anatomy", "Normal chest X-ray with no significant findings",
               "--steps", "4", "--out", "x.png", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    settings = json.loads(done.stdout)["settings"]
    from pipelines.model.embedded import EMBEDDED_FOLDER, weights_revision

    assert settings["model_revision"] == weights_revision(EMBEDDED_FOLDER)
    assert (installed["cwd"] / "x.png").stat().st_size > 0
