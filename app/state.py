"""What the app holds across requests: the models it offers (loaded once each), the results it has
computed (returned at once when asked again), and the GPU wrapper a ZeroGPU Space needs.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from pipelines.core.errors import MedEditError
from pipelines.core.lru import LRU
from pipelines.data.burned_in import BURNED_IN_KEY
from pipelines.editing.pipeline import MedEditPipeline
from pipelines.editing.requests import Edit, Sampling, Series
from pipelines.evaluation.domain import with_domain_check
from pipelines.evaluation.landing import add_landing
from pipelines.model.embedded import EMBEDDED, EMBEDDED_FOLDER
from pipelines.model.info import INFO_FILE, ModelInfo, read_model_info
from pipelines.model.loading import load_model
from pipelines.model.offered import shipped_models

from app.held_image import HeldImage

log = logging.getLogger("mededit.app")

try:  # On a Hugging Face ZeroGPU Space, spaces.GPU lends a GPU to the decorated call.
    import spaces

    gpu, ON_ZERO_GPU = spaces.GPU, True
except ImportError:
    def gpu(fn):
        return fn

    ON_ZERO_GPU = False


# ---------------------------------------------------------------- the model registry

def listed_models() -> list[str]:
    """$MEDEDIT_MODEL's models (comma-separated), each once."""
    return list(dict.fromkeys(s.strip() for s in os.environ.get("MEDEDIT_MODEL", "").split(",") if s.strip()))


def model_choices() -> list[str]:
    """The models the picker offers: $MEDEDIT_MODEL's, else the embedded one (the default) and
    every whole model shipped beside it (a 256-px one, once all of it is there)."""
    return listed_models() or [EMBEDDED, *(path for path, why in shipped_models().items() if not why)]


def models_not_offered() -> dict[str, str]:
    """Shipped model folders left out of the picker, each with why (none when $MEDEDIT_MODEL lists
    the models)."""
    return {} if listed_models() else {path: why for path, why in shipped_models().items() if why}


def check_model_choice(source) -> str:
    """Only the listed models may be loaded: an API client must not point at arbitrary paths."""
    if source is None or source == "":
        return model_choices()[0]
    choices = model_choices()
    if not isinstance(source, str) or source not in choices:
        raise MedEditError(f"unknown model {source!r}; this server offers: {', '.join(choices)}")
    return source


def model_folder(source: str) -> Path:
    return EMBEDDED_FOLDER if source == EMBEDDED else Path(source)


def model_info(source: str) -> ModelInfo:
    """What a model offers, read without loading weights (for building the sliders)."""
    try:
        return read_model_info(model_folder(source))
    except MedEditError:
        return ModelInfo.embedded_default()  # not loadable yet (or a Hub model): the registry


def all_attributes() -> list[dict]:
    """The attributes of every offered model, first occurrence wins (one slider per name)."""
    seen = {}
    for source in model_choices():
        for attribute in model_info(source).attributes:
            seen.setdefault(attribute["name"], attribute)
    return list(seen.values())


_pipelines: dict[str, MedEditPipeline] = {}
_load_lock = threading.Lock()


def get_pipeline(source=None) -> MedEditPipeline:
    """One MedEditPipeline per model per process, loaded on first use."""
    source = check_model_choice(source)
    pipeline = _pipelines.get(source)
    if pipeline is not None:
        return pipeline
    if source == EMBEDDED and not (model_folder(source) / INFO_FILE).exists():
        raise MedEditError(f"the embedded model is not installed ({model_folder(source)} is missing or "
                           "incomplete); set MEDEDIT_MODEL to a MedEdit model folder")
    with _load_lock:
        if source not in _pipelines:
            try:
                # Its uploads judged by the model's domain check (pipelines/evaluation/domain.py).
                _pipelines[source] = with_domain_check(MedEditPipeline(load_model(source)), source)
            except MedEditError as error:
                raise MedEditError(f"cannot load model {source!r}: {error}") from None
            except Exception as error:  # noqa: BLE001 - corrupt files, missing packages...
                log.exception("loading %s failed", source)
                raise MedEditError(f"cannot load model {source!r}: {type(error).__name__}: {error}") from None
        return _pipelines[source]


# ---------------------------------------------------------------- the result cache

_results = LRU(64)  # whole results by request: examples and repeated requests return at once


@gpu
def _compute(kind: str, source: str, s: Sampling, e: Edit | None, series: Series | None, callback,
             image: HeldImage | None = None):
    """The GPU work. Arguments are plain picklable requests (ZeroGPU runs this in another process)."""
    pipeline = get_pipeline(source)
    if image is not None:
        if series is None:
            result = pipeline.edit_image(image.pixels, s, e, image.regions, callback, edit_anyway=image.edit_anyway)
            add_landing(result, pipeline.model)  # did the edit land: said in its notes
        else:
            result = pipeline.series_image(image.pixels, s, e, series, image.regions, callback,
                                           edit_anyway=image.edit_anyway)
        result.settings["source_sha256"] = image.sha256
        if image.burned_in:  # the source may show identifying text: every output says so
            result.settings[BURNED_IN_KEY] = "YES"
        return result
    if kind == "generate":
        return pipeline.generate(s, callback)
    if kind == "edit":
        return add_landing(pipeline.edit(s, e, callback), pipeline.model)
    return pipeline.series(s, e, series, callback)


def compute(kind: str, source: str, s: Sampling, e: Edit | None = None, series: Series | None = None,
            callback=None, image: HeldImage | None = None):
    """(result, from_cache): a generate, edit or series result (of `image` when given: an image the
    user brought), from the cache when the same request was answered before (its notes say so).
    `callback(step)` is called after each denoising step."""
    key = (kind, source, get_pipeline(source).model.revision, repr(s), repr(e), repr(series),
           image and image.digest)
    cached = _results.get(key)
    if cached is not None:
        return cached, True
    # A callback cannot cross into ZeroGPU's worker process.
    return _results.put(key, _compute(kind, source, s, e, series, None if ON_ZERO_GPU else callback, image)), False
