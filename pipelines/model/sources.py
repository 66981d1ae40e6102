"""Bring-your-own PixArt: find a checkpoint (local folder or Hub repo id), check it, load it.

A source is a local folder in diffusers `save_pretrained` layout or a Hub repo id `owner/name`.
Hub repos are fetched with `huggingface_hub.snapshot_download`, safetensors and configs only (never
pickle), and fall back to the local cache when offline or when the Hub cannot be reached. Every
folder is checked as a PixArt-alpha/Sigma pipeline before a single weight is read, and loading
never runs remote code.
"""

import json
import logging
import os
import re
from pathlib import Path

import torch
from diffusers import PixArtAlphaPipeline, PixArtSigmaPipeline
from huggingface_hub import constants, snapshot_download
from huggingface_hub.errors import (GatedRepoError, IncompleteSnapshotError, LocalEntryNotFoundError,
                                    RepositoryNotFoundError, RevisionNotFoundError)

from pipelines.core.errors import MedEditError
from pipelines.core.files import PICKLE_SUFFIXES
from pipelines.core.limits import MAX_PROMPT_CHARS

log = logging.getLogger(__name__)

# What a PixArt pipeline needs: configs, tokenizer files, safetensors weights. Pickle is left out.
ALLOW_PATTERNS = ["model_index.json", "*.json", "*.txt", "*.model", "*.safetensors"]
PIPELINES = {"PixArtAlphaPipeline": "pixart-alpha", "PixArtSigmaPipeline": "pixart-sigma"}
COMPONENTS = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")
WEIGHTED = ("transformer", "vae", "text_encoder")  # the components that carry weights
LIBRARIES = ("diffusers", "transformers")  # anything else would mean custom (remote) code
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")


def hub_cache_dir() -> Path:
    """The Hub cache, read from the environment now (huggingface_hub reads it once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(constants.HF_HUB_CACHE)


def _transport_errors() -> tuple[type[Exception], ...]:
    """Network failures that are not OSError (huggingface_hub 2 talks through httpx2)."""
    errors = []
    for module in ("httpx2", "httpx"):
        try:
            errors.append(__import__(module).HTTPError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def resolve_source(source: str, revision: str | None = None, offline: bool | None = None) -> Path:
    """A local folder for `source`: the folder itself, or a Hub snapshot (downloaded or cached).

    offline=None honours HF_HUB_OFFLINE; offline=True only looks in the cache.
    """
    if not isinstance(source, str) or not source.strip():
        raise MedEditError("a model source must be a local folder or a Hub repo id like 'owner/name'")
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise MedEditError(f"model source '{source}' is a file; pass the pipeline's folder "
                           "(the one with model_index.json) or a Hub repo id like 'owner/name'")
    if not REPO_ID.match(source) or ".." in source or source.endswith((".", "-")):
        raise MedEditError(f"model source '{source}' is neither an existing local folder nor a Hub "
                           "repo id like 'PixArt-alpha/PixArt-XL-2-512x512'")
    return _snapshot(source, revision, _env_flag("HF_HUB_OFFLINE") if offline is None else offline)


def _snapshot(repo_id: str, revision: str | None, offline: bool) -> Path:
    shown = f"model '{repo_id}' (revision {revision or 'main'})"
    kwargs = dict(revision=revision, allow_patterns=ALLOW_PATTERNS, cache_dir=hub_cache_dir())
    reason = "offline mode (HF_HUB_OFFLINE) is on" if offline else ""
    if not offline:
        try:
            return Path(snapshot_download(repo_id, **kwargs))
        except GatedRepoError:
            raise MedEditError(f"{shown} is gated: accept its licence on huggingface.co and log in "
                               "(hf auth login), or pass a local folder") from None
        except RevisionNotFoundError:
            raise MedEditError(f"{shown}: the repo exists but has no revision '{revision}'; "
                               "pass a branch, tag or commit that exists") from None
        except RepositoryNotFoundError:
            raise MedEditError(f"{shown} does not exist on the Hugging Face Hub (or is private and "
                               "no token was given); check the repo id, or pass a local folder") from None
        except (LocalEntryNotFoundError, IncompleteSnapshotError, OSError, *_transport_errors()) as error:
            # The Hub could not be reached (or was down): the cache may still hold it.
            reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            log.info("Hub unreachable for %s (%s); trying the local cache", repo_id, reason)
    try:
        return Path(snapshot_download(repo_id, local_files_only=True, **kwargs))
    except (LocalEntryNotFoundError, IncompleteSnapshotError, OSError):
        raise MedEditError(
            f"{shown} is not in the local Hugging Face cache ({hub_cache_dir()}) and the Hub cannot "
            f"be reached: {reason}; download it once with network access, or pass a local folder"
        ) from None


def check_pixart_folder(folder: Path) -> str:
    """'pixart-alpha' or 'pixart-sigma', or MedEditError naming what the folder lacks."""
    folder = Path(folder)
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        raise MedEditError(f"'{folder}' is not a diffusers pipeline folder: model_index.json is missing")
    try:
        index = json.loads(index_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MedEditError(f"'{index_file}' is not valid JSON: {error}") from None
    name = index.get("_class_name") if isinstance(index, dict) else None
    if name not in PIPELINES:
        raise MedEditError(f"'{folder}' holds a {name or 'unknown'} pipeline; expected one of: "
                           f"{', '.join(PIPELINES)}")
    missing = [c for c in COMPONENTS if c not in index or not (folder / c).is_dir()]
    if missing:
        raise MedEditError(f"'{folder}' is not a complete PixArt pipeline: missing "
                           f"{', '.join(missing)} (needs {', '.join(COMPONENTS)})")
    for component in COMPONENTS:
        entry = index[component]
        if not (isinstance(entry, list) and len(entry) == 2 and entry[0] in LIBRARIES):
            raise MedEditError(f"'{folder}': component {component} is {entry!r}; only classes from "
                               f"{' or '.join(LIBRARIES)} are loaded (no remote code)")
    for component in WEIGHTED:
        files = [p for p in (folder / component).rglob("*") if p.is_file()]
        if any(p.name.endswith(".safetensors") for p in files):
            continue
        if any(p.name.endswith(PICKLE_SUFFIXES) for p in files):
            raise MedEditError(f"'{folder / component}' has only pickle weights; pickle weights are "
                               "not loaded; convert to safetensors")
        raise MedEditError(f"'{folder / component}' has no weights (*.safetensors)")
    return PIPELINES[name]


def load_pixart(source: str | Path, revision: str | None = None, dtype: torch.dtype = torch.float32,
                device: str | torch.device = "cpu"):
    """A diffusers PixArtAlphaPipeline or PixArtSigmaPipeline from a folder or Hub repo id."""
    folder = resolve_source(str(source), revision)
    kind = check_pixart_folder(folder)  # before any weights are read
    cls = PixArtAlphaPipeline if kind == "pixart-alpha" else PixArtSigmaPipeline
    try:
        pipe = cls.from_pretrained(folder, torch_dtype=dtype, use_safetensors=True,
                                   local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise MedEditError(f"could not load the {kind} pipeline from '{folder}': "
                           f"{str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
    return pipe.to(device)


class EncodedPrompts(tuple):
    """(embeds [B, L, D], mask [B, L]); `.truncated` holds the cut-off text of each prompt."""

    def __new__(cls, embeds: torch.Tensor, mask: torch.Tensor, truncated: list[str]):
        self = super().__new__(cls, (embeds, mask))
        self.truncated = truncated
        return self

    @property
    def embeds(self) -> torch.Tensor:
        return self[0]

    @property
    def mask(self) -> torch.Tensor:
        return self[1]


@torch.no_grad()
def encode_prompts_t5(pipe, prompts: list[str], max_length: int = 120) -> EncodedPrompts:
    """T5 states of `prompts` with the pipeline's own tokenizer and encoder, padded to max_length.

    Matches the pipeline's `encode_prompt(..., clean_caption=False)`; text beyond max_length tokens
    is cut, logged, and returned in `.truncated` ("" where everything fit).
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    for prompt in prompts:
        if not isinstance(prompt, str):
            raise MedEditError(f"a prompt must be text, got {type(prompt).__name__}")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise MedEditError(f"prompt is {len(prompt)} characters; at most {MAX_PROMPT_CHARS} "
                               "are accepted")
    prompts = [p.lower().strip() for p in prompts]  # as the pipeline's own text preprocessing
    tokens = pipe.tokenizer(prompts, padding="max_length", max_length=max_length, truncation=True,
                            add_special_tokens=True, return_tensors="pt")
    device = pipe.text_encoder.device
    mask = tokens["attention_mask"].to(device)
    embeds = pipe.text_encoder(tokens["input_ids"].to(device), attention_mask=mask)[0]
    truncated = []
    for prompt in prompts:
        ids = pipe.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        room = max_length - 1  # T5 appends </s> only
        cut = pipe.tokenizer.decode(ids[room:]) if len(ids) > room else ""
        if cut:
            log.warning("prompt cut at %d tokens; dropped: %r", max_length, cut)
        truncated.append(cut)
    return EncodedPrompts(embeds.to(pipe.text_encoder.dtype), mask, truncated)
