"""The README shows what it says: each `generate`, `edit` and `series` command of its "Command
line" section is run as written (in-process, outputs moved to a temporary folder) on the shipped
model, and the app's ready edits (the screenshot is one) and the phantom grid are remade, and the
shipped classifier checks each image against its prompts: every attribute of the modality present
exactly when its phrase is in the prompt (or its slider is up), so an unasked ruler fails as a
missing edit does. The classifier has no output for "a lesion is there", so dermoscopy images are
also measured for one: a dark blob in the centre, as every phantom has.
"""

import importlib.util
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.cli import main
from pipelines.data.attributes import attributes_of, modality_of
from pipelines.evaluation.classifier import OUTPUTS, load_classifier, predict_probs

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("generate", "edit", "series")


def readme_commands() -> list[list[str]]:
    """The example commands of the README's "Command line" block that make images from prompts
    alone (one with --image needs the reader's own file), as argument lists after `-m pipelines`."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Command line\n+```bash\n(.*?)```", text, re.S).group(1)
    lines = block.replace("\\\n", " ").splitlines()
    argvs = [shlex.split(line, comments=True)[3:] for line in lines if line.startswith("python -m pipelines ")]
    return [a for a in argvs if a and a[0] in COMMANDS and "--image" not in a]


def option(argv: list[str], name: str, default: str = "") -> str:
    return argv[argv.index(name) + 1] if name in argv else default


def sliders_of(argv: list[str]) -> dict:
    pairs = [argv[i + 1].split("=") for i, a in enumerate(argv) if a == "--attribute"]
    return {name: float(value) for name, value in pairs}


def lesion_share(image) -> float:
    """The share of the image's central quarter darker than 0.8 of the skin (the 75th percentile of
    the whole image's brightness). Phantoms: at least 0.087 (300 seeds at 64 px, with every
    artifact); a generated image of bare skin: 0.000-0.005."""
    brightness = np.asarray(image, float)[..., :3].mean(-1)
    n = brightness.shape[0]
    centre = brightness[n // 4:3 * n // 4, n // 4:3 * n // 4]
    return float((centre < 0.8 * np.percentile(brightness, 75)).mean())


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


def check_shows(classifier, image, anatomy: str, style: str, sliders: dict | None = None, what: str = ""):
    """The classifier finds in `image` exactly what the prompts (and sliders) ask for."""
    modality = modality_of(anatomy, style)
    probs = predict_probs(classifier, [np.asarray(image)])[0]
    assert (probs[OUTPUTS.index("modality_cxr")] > 0.5) == (modality == "cxr"), what
    prompt = f"{anatomy}, {style}"
    for attribute in attributes_of(modality):
        asked = attribute.phrase in prompt or (sliders or {}).get(attribute.name, 0) > 0
        p = probs[OUTPUTS.index(attribute.name)]
        assert (p > 0.5) == asked, f"{what}: {attribute.name} {p:.2f}, {'asked' if asked else 'not asked'}"
    if modality == "dermoscopy":
        assert lesion_share(image) > 0.087, f"{what}: no lesion ({lesion_share(image):.3f})"


def script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_the_readme_names_its_examples():
    kinds = [argv[0] for argv in readme_commands()]
    assert kinds.count("generate") >= 1 and kinds.count("edit") >= 2 and kinds.count("series") >= 1


@pytest.mark.parametrize("argv", readme_commands(), ids=lambda a: f"{a[0]}-{Path(option(a, '--out')).stem}")
def test_a_readme_command_shows_what_its_prompts_say(argv, tmp_path, classifier, monkeypatch):
    monkeypatch.delenv("MEDEDIT_MODEL", raising=False)  # the README's commands run on the embedded model
    out = tmp_path / Path(option(argv, "--out")).name
    argv = [str(out) if i and argv[i - 1] == "--out" else a for i, a in enumerate(argv)]
    assert main(argv) == 0
    anatomy, style = option(argv, "--anatomy"), option(argv, "--style")
    to_anatomy, to_style = option(argv, "--to-anatomy") or anatomy, option(argv, "--to-style") or style
    if argv[0] == "generate":
        check_shows(classifier, read(out), anatomy, style, what="generated")
    elif argv[0] == "edit":
        check_shows(classifier, read(out / "neutral.png"), anatomy, style, what="neutral")
        check_shows(classifier, read(out / "edited.png"), to_anatomy, to_style, sliders_of(argv), what="edited")
    else:
        frames = sorted(out.glob("frame_*.png"))
        assert len(frames) == int(option(argv, "--frames", "16"))
        first, last = read(frames[0]), read(frames[-1])
        check_shows(classifier, first, anatomy, style, what="first frame")
        check_shows(classifier, last, to_anatomy, to_style, what="last frame")
        # The edit is seen where it acts: most of the lesion changes from the first frame to the last.
        dark = lambda image: image.mean(-1) < 0.8 * np.percentile(image.mean(-1), 75)  # noqa: E731
        lesion = dark(first) | dark(last)
        changed = np.abs(first.astype(int) - last).max(-1) > 25
        assert changed[lesion].mean() > 0.4, changed[lesion].mean()


def test_every_ready_edit_of_the_app_shows_its_label(classifier):
    """The app's ready edits (the README's screenshot shows "Chest X-ray: add a pacemaker"), with
    the settings the app sends: the model's defaults, the example's swap point, seed and sliders."""
    from app.examples import EXAMPLES
    from pipelines.editing.pipeline import MedEditPipeline
    from pipelines.editing.requests import Edit, Sampling
    from pipelines.model.loading import load_model

    pipeline = MedEditPipeline(load_model("embedded"))
    defaults = pipeline.model.info.defaults
    for x in EXAMPLES:
        result = pipeline.edit(Sampling.with_defaults(defaults, x.anatomy, x.style, x.seed),
                               Edit.with_defaults(defaults, x.to_anatomy, x.to_style, dict(x.sliders), x.swap_at))
        check_shows(classifier, result.neutral, x.anatomy, x.style, what=f"{x.label}, before")
        check_shows(classifier, result.edited, x.to_anatomy or x.anatomy, x.to_style or x.style, x.sliders,
                    what=f"{x.label}, after")


def test_the_phantom_grid_is_remade_and_each_cell_shows_its_label(classifier):
    """assets/phantom_grid.png is what scripts/phantom_grid.py draws, and in each attribute's row
    the classifier finds the attribute in the ON cells and not in the off ones."""
    from pipelines.data.phantoms import phantom

    grid = script("phantom_grid")
    assert np.array_equal(np.asarray(grid.build(128).convert("RGB")),
                          np.asarray(Image.open(ROOT / "assets" / "phantom_grid.png").convert("RGB")))
    for modality in ("dermoscopy", "cxr"):
        for attribute in attributes_of(modality):
            cells = [phantom(modality, seed, 128, **{attribute.name: on}).image for seed in grid.SEEDS
                     for on in (False, True)]
            probs = predict_probs(classifier, cells)[:, OUTPUTS.index(attribute.name)]
            assert (probs[1::2] > 0.5).all() and (probs[0::2] < 0.5).all(), (attribute.name, probs.round(2))


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium found (apt-get install chromium)")
def test_the_screenshot_is_remade_and_shows_its_caption(classifier, tmp_path, monkeypatch):
    """assets/screenshot.png is what scripts/screenshot.py captures ("the app after an edit: a
    pacemaker added to a synthetic chest X-ray"): the before and after the page shows, as fetched
    by the browser, hold no pacemaker and a pacemaker, and nothing else unasked."""
    pytest.importorskip("playwright.sync_api")
    from app.examples import EXAMPLES

    monkeypatch.delenv("MEDEDIT_MODEL", raising=False)  # the README's app runs the embedded model
    example = next(x for x in EXAMPLES if x.label == "Chest X-ray: add a pacemaker")
    out = tmp_path / "screenshot.png"
    before, after = script("screenshot").capture(out, example.label, chromium=CHROMIUM)
    small = lambda shown: np.asarray(Image.fromarray(shown).resize((64, 64), Image.NEAREST))  # noqa: E731
    check_shows(classifier, small(before), example.anatomy, example.style, what="screenshot, before")
    check_shows(classifier, small(after), example.anatomy, example.to_style, what="screenshot, after")
    assert Image.open(out).size == Image.open(ROOT / "assets" / "screenshot.png").size == (1366, 768)
