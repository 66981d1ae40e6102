"""The repository deploys as a Hugging Face Space: the README's front matter and the model cards
parse with huggingface_hub's own card classes and hold what the Hub asks for, and git marks every
binary for LFS/Xet (the Hub refuses a push of unmarked binaries)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from huggingface_hub import ModelCard, SpaceCard

ROOT = Path(__file__).resolve().parents[1]
# From the Spaces configuration reference (huggingface.co/docs/hub/spaces-config-reference).
COLOURS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
HARDWARE = {"cpu-basic", "cpu-upgrade", "t4-small", "t4-medium", "l4x1", "l4x4", "l40sx1", "l40sx4",
            "l40sx8", "a10g-small", "a10g-large", "a10g-largex2", "a10g-largex4", "a100-large",
            "a100x4", "a100x8"}
SHORT_DESCRIPTION_MAX = 60  # the Hub refuses a longer one
EXPORTED = ("x.png", "x.gif", "x.webp", "x.dcm", "x.zip", "x.safetensors")  # what MedEdit writes


def pinned(package: str) -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name, _, version = line.split("#")[0].strip().partition("==")
        if name.strip().lower() == package:
            return version.strip()
    raise AssertionError(f"{package} is not pinned in requirements.txt")


def test_space_front_matter_is_a_valid_space_config():
    card = SpaceCard.load(ROOT / "README.md")
    data = card.data.to_dict()
    assert data["sdk"] == "gradio"
    assert data["sdk_version"] == pinned("gradio")  # the Space runs the Gradio the tests ran
    assert re.fullmatch(r"3\.\d+(\.\d+)?", data["python_version"])
    assert (ROOT / data["app_file"]).is_file()
    assert data["colorFrom"] in COLOURS and data["colorTo"] in COLOURS
    assert data.get("suggested_hardware", "cpu-basic") in HARDWARE
    assert isinstance(data["title"], str) and data["title"]
    assert isinstance(data["emoji"], str) and data["emoji"]
    assert data["license"] == "apache-2.0"
    assert 0 < len(data["short_description"]) <= SHORT_DESCRIPTION_MAX
    assert all(isinstance(tag, str) for tag in data.get("tags", []))
    assert card.text.lstrip().startswith("# MedEdit")


@pytest.mark.parametrize("folder, library, task", [("mededit-default", "diffusers", "text-to-image"),
                                                   ("classifier", None, "image-classification")])
def test_model_cards_carry_hub_metadata(folder, library, task):
    card = ModelCard.load(ROOT / "assets" / folder / "README.md", ignore_metadata_errors=False)
    assert card.data.license == "apache-2.0"
    assert card.data.library_name == library
    assert card.data.pipeline_tag == task
    assert {"medical-imaging", "synthetic-data", "safetensors"} <= set(card.data.tags)
    assert card.data.base_model is None  # both trained from scratch by this project
    assert "synthetic" in card.text.lower()


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def lfs_filter(paths) -> dict[str, str]:
    """git's own reading of .gitattributes: path -> value of the `filter` attribute."""
    out = git("check-attr", "filter", "--", *paths)
    return dict(re.fullmatch(r"(.*): filter: (.*)", line).groups() for line in out.splitlines())


def test_every_binary_file_is_marked_for_lfs():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no tracked files to check")
    binaries = []
    for line in git("ls-files", "--eol").splitlines():
        flags, path = line.split("\t", 1)
        index, worktree = flags.split()[:2]
        # git's own content test; with git-lfs the index holds a text pointer, the work tree the file
        if index == "i/-text" or worktree == "w/-text":
            binaries.append(path)
    assert any(p.endswith(".safetensors") for p in binaries)  # the check sees the shipped weights
    unmarked = [p for p, value in lfs_filter(binaries).items() if value != "lfs"]
    assert not unmarked, f"binary files not marked for LFS/Xet in .gitattributes: {unmarked}"
    assert set(lfs_filter(EXPORTED).values()) == {"lfs"}  # exports added later are covered too
    assert lfs_filter(["app.py", "README.md"]) == {"app.py": "unspecified", "README.md": "unspecified"}
