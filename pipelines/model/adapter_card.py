"""The model card (README.md) of an adapter folder: Hub metadata, what each file is, how to load it.

Written with huggingface_hub's own card classes, so the Hub reads its metadata as it reads any
model's: library_name peft, the base model (when it is a Hub id), pipeline tag and tags.
"""

from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

TEMPLATE = """
# {title}

A LoRA adapter for the transformer of the PixArt checkpoint `{base_model}`{revision}, trained with
MedEdit (`python -m pipelines train lora`){projector}.

## Files

{files}

## Load it

With peft alone (the LoRA only; MedEdit's projector and text window are MedEdit's):

```python
from diffusers import PixArtTransformer2DModel
from peft import PeftModel

transformer = PixArtTransformer2DModel.from_pretrained("{base_model}", subfolder="transformer")
transformer = PeftModel.from_pretrained(transformer, "path/to/this/adapter")
```

With MedEdit (LoRA, projector, sliders for its attributes):

```bash
python -m pipelines edit --model path/to/this/adapter --anatomy "..." --style "..." --out edit/
```

## LoRA

Rank {rank}, alpha {alpha}, on {targets}.

{training}
"""


def is_hub_id(name: str) -> bool:
    """'org/model', not a local path: what a card's base_model and peft's revision may name."""
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return name.count("/") == 1 and not Path(name).exists()


def _training(meta: dict) -> str:
    training = meta.get("training") or {}
    if not training:
        return ""
    shown = ", ".join(f"{k} {v}" for k, v in training.items() if v is not None)
    attributes = ", ".join(a["name"] for a in meta.get("attributes", []))
    lines = ["## Training", "", f"MedEdit's `train lora`: {shown}."]
    if meta.get("priors"):
        priors = "; ".join(f"{channel}: {', '.join(names)}" for channel, names in meta["priors"].items())
        lines.append(f"Alignment priors (labels per channel): {priors}.")
    if attributes:
        lines.append(f"Attributes it adds as sliders: {attributes}.")
    return "\n".join(lines)


def adapter_card(meta: dict, peft_config: dict, files_note: dict[str, str]) -> str:
    """The README.md text of an adapter folder (YAML front matter + body)."""
    base_model = str(meta["base_model"])
    hub_base = is_hub_id(base_model)
    data = ModelCardData(library_name="peft", base_model=base_model if hub_base else None,
                         pipeline_tag="text-to-image",
                         tags=["lora", "peft", "diffusers", "pixart", "mededit", "medical-imaging"],
                         **({"base_model_relation": "adapter"} if hub_base else {}))
    targets = peft_config.get("target_modules") or []
    body = TEMPLATE.format(
        title=f"MedEdit adapter for {Path(base_model).name or base_model}",
        base_model=base_model,
        revision=f" (revision `{meta['base_revision']}`)" if meta.get("base_revision") else "",
        projector=" with an HFFM projector (`projector/`) that puts each prompt channel through its own branch"
        if meta.get("projector") else "",
        files="\n".join(f"- `{name}`: {what}" for name, what in files_note.items()
                        if meta.get("projector") or not name.startswith("projector")),
        rank=peft_config.get("r"), alpha=peft_config.get("lora_alpha"),
        targets=", ".join(f"`{t}`" for t in sorted(targets)) if not isinstance(targets, str) else f"`{targets}`",
        training=_training(meta))
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n{body}"))
