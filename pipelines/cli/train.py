"""`python -m pipelines train vae|dit|classifier|lora ...`.

The options and the checks of their values come from training/options.py, which needs no torch:
`--help` and bad input answer at once. The chosen trainer (torch, diffusers, ...) is imported only
once its arguments have passed.
"""

import importlib

from pipelines.training.options import OPTIONS

TRAINERS = {
    "vae": ("pipelines.training.vae", "train_vae", "a small AutoencoderKL on phantoms"),
    "dit": ("pipelines.training.dit", "train_dit", "the DiT and its HFFM projector"),
    "classifier": ("pipelines.training.classifier", "train_classifier",
                   "the attribute classifier that judges edits"),
    "lora": ("pipelines.training.lora", "train_lora", "LoRA + HFFM on a PixArt checkpoint"),
}


def add_arguments(parser):
    # Sub-parsers are of the command line's own class: an argument error is one line, exit 2.
    sub = parser.add_subparsers(dest="what", required=True, metavar="WHAT", parser_class=type(parser))
    for name, (_, _, help_text) in TRAINERS.items():
        add_options, _ = OPTIONS[name]
        add_options(sub.add_parser(name, help=help_text, description=f"Train {help_text}."))


def run(args) -> int:
    _, check = OPTIONS[args.what]
    check(args)
    module_name, function, _ = TRAINERS[args.what]
    # Imported here, not at the top, so that `--help` and bad input need no torch.
    getattr(importlib.import_module(module_name), function)(args)
    return 0
