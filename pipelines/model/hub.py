"""Where a model's files come from: a local folder, or a Hub repo id's snapshot, fetched with
`huggingface_hub.snapshot_download` (safetensors and configs only, never pickle) and taken from
the local cache when offline or when the Hub cannot be reached.

No torch here: a command resolves its --model (a download, or a clear refusal when the model is
neither cached nor reachable) before torch and the model load; sources.py then loads the folder.
"""

import logging
import os
import re
from pathlib import Path

from huggingface_hub import constants, snapshot_download
from huggingface_hub.errors import (GatedRepoError, IncompleteSnapshotError, LocalEntryNotFoundError,
                                    RepositoryNotFoundError, RevisionNotFoundError)

from pipelines.core.errors import MedEditError

log = logging.getLogger(__name__)

# What a PixArt pipeline needs: configs, tokenizer files, safetensors weights. Pickle is left out.
ALLOW_PATTERNS = ["model_index.json", "*.json", "*.txt", "*.model", "*.safetensors"]
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
