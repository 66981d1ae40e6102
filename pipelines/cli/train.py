"""`python -m pipelines train vae|dit|classifier|lora ...`: only the chosen trainer is imported."""

import importlib
import sys

TRAINERS = {
    "vae": ("pipelines.training.vae", "train_vae", "a small AutoencoderKL on phantoms"),
    "dit": ("pipelines.training.dit", "train_dit", "the DiT and its HFFM projector"),
    "classifier": ("pipelines.training.classifier", "train_classifier",
                   "the attribute classifier that judges edits"),
    "lora": ("pipelines.training.lora", "train_lora", "LoRA + HFFM on a PixArt checkpoint"),
}


def add_arguments(parser):
    sub = parser.add_subparsers(dest="what", required=True, metavar="WHAT")
    chosen = next((a for a in sys.argv[1:] if a in TRAINERS), None)
    for name, (module_name, function, help_text) in TRAINERS.items():
        trainer = sub.add_parser(name, help=help_text, description=f"Train {help_text}.")
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(trainer)
            trainer.set_defaults(trainer=getattr(module, function))


def run(args) -> int:
    args.trainer(args)
    return 0
