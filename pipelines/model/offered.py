"""Which model a name means, which models ship beside the default, and which attribute sliders a
model offers with their ranges, read from its files without torch: a command refuses an unknown
--attribute, or a scale outside the model's range, in well under a second, before anything heavy
loads (loading.py then loads the model; its own check stays for the library and the app)."""

import os
from pathlib import Path

from pipelines.core.errors import MedEditError
from pipelines.core.files import ASSETS
from pipelines.data.attributes import ATTRIBUTES
from pipelines.model.folder_check import check_model_folder
from pipelines.model.info import INFO_FILE, read_model_info

EMBEDDED = "embedded"
EMBEDDED_FOLDER = ASSETS / "mededit-default"
SHIPPED_PREFIX = "mededit-"  # assets/mededit-*: the default and the models trained beside it (mededit-256)
PIXART_INDEX = "model_index.json"  # a diffusers pipeline folder (sources.py checks the rest)


def default_source() -> str:
    """$MEDEDIT_MODEL's first entry (the app offers every comma-separated one), else embedded."""
    first = os.environ.get("MEDEDIT_MODEL", "").split(",")[0].strip()
    return first or EMBEDDED


def shipped_models(assets: Path = ASSETS) -> dict[str, str]:
    """The MedEdit folders shipped beside the default (assets/mededit-*), each path -> "" when it
    holds a whole model (offered after the default), else why it is not offered (one still in
    training holds only some of its parts)."""
    found = {}
    for folder in sorted(Path(assets).glob(f"{SHIPPED_PREFIX}*")):
        if not folder.is_dir() or folder.resolve() == EMBEDDED_FOLDER.resolve():
            continue
        try:
            check_model_folder(folder)
            read_model_info(folder)
            found[str(folder)] = ""
        except MedEditError as error:
            found[str(folder)] = str(error)
    return found


def model_image_size(source: str | None = None) -> int | None:
    """The side of a MedEdit model's images from its mededit.json (the loader checks its weights
    agree), or None where only loading can tell (a PixArt pipeline, a Hub repo id, an adapter)."""
    source = source or default_source()
    folder = EMBEDDED_FOLDER if source == EMBEDDED else Path(source).expanduser()
    if (folder / INFO_FILE).is_file() and not (folder / PIXART_INDEX).is_file():
        return read_model_info(folder).image_size
    return None


def slider_names(source: str | None = None) -> list[str] | None:
    """The attributes a model's sliders move, or None where only loading can tell: a Hub repo id
    (not read before loading) or an adapter (its own labels become sliders too)."""
    source = source or default_source()
    folder = EMBEDDED_FOLDER if source == EMBEDDED else Path(source).expanduser()
    if (folder / PIXART_INDEX).is_file():
        return [a.name for a in ATTRIBUTES]  # a plain PixArt pipeline: the registry's (pixart.py)
    if (folder / INFO_FILE).is_file():
        return [a["name"] for a in read_model_info(folder).attributes]
    return None


def check_slider_names(source: str | None, names) -> None:
    known = slider_names(source)
    for name in names if known is not None else ():
        if name not in known:
            raise MedEditError(f"unknown attribute {name!r}; this model has: {', '.join(known)}")


def check_sliders(source: str | None, sliders: dict[str, float]) -> None:
    """Names as check_slider_names; scales against the ranges a MedEdit folder's mededit.json stores
    (a Hub model's and an adapter's are checked on load, a PixArt pipeline's are the outer range)."""
    check_slider_names(source, sliders)
    source = source or default_source()
    folder = EMBEDDED_FOLDER if source == EMBEDDED else Path(source).expanduser()
    if (folder / INFO_FILE).is_file() and not (folder / PIXART_INDEX).is_file():
        info = read_model_info(folder)
        for name, scale in sliders.items():
            info.slider(name, scale)
