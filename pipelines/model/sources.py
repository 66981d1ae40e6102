"""Bring-your-own PixArt: find a checkpoint (local folder or Hub repo id), check it, load it.

A source is a local folder in diffusers `save_pretrained` layout or a Hub repo id `owner/name`
(hub.py finds its files: fetched, safetensors and configs only, or from the local cache). Every
folder is checked as a PixArt-alpha/Sigma pipeline before a single weight is read, and loading
never runs remote code.
"""

import json
import logging
from pathlib import Path

import torch
from diffusers import PixArtAlphaPipeline, PixArtSigmaPipeline

from pipelines.core.errors import MedEditError
from pipelines.core.files import PICKLE_SUFFIXES
from pipelines.core.limits import MAX_PROMPT_CHARS
from pipelines.model.hub import resolve_source

log = logging.getLogger(__name__)

PIPELINES = {"PixArtAlphaPipeline": "pixart-alpha", "PixArtSigmaPipeline": "pixart-sigma"}
COMPONENTS = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")
WEIGHTED = ("transformer", "vae", "text_encoder")  # the components that carry weights
LIBRARIES = ("diffusers", "transformers")  # anything else would mean custom (remote) code


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
