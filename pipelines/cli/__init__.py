"""`python -m pipelines COMMAND ...`: dispatch to pipelines/cli/COMMAND.py.

Only the chosen command's module is imported, so `phantoms` starts without loading torch.
Bad input ends with one clear line on stderr and exit code 2, never a traceback.
"""

import argparse
import importlib
import sys

from pipelines.core.errors import MedEditError


COMMANDS = {
    "phantoms": "Render procedural phantoms with captions, labels and masks (imagefolder layout).",
    "generate": "Sample one image from anatomy and style prompts.",
    "edit": "Neutral and edited image from one noise, swapping the prompts at --swap-at.",
    "series": "A Bezier series of frames from neutral to edited, with animation and manifest.",
    "train": "Train a model: vae, dit, classifier or lora.",
    "eval": "Measure edit quality: attribute accuracy, CFRT, preservation.",
    "bench": "Measure speed against the stock diffusers pipeline.",
    "convert": "Convert CheXpert, ISIC 2019 or a generic CSV into an imagefolder dataset.",
    "synthesize": "Write an imagefolder dataset of generated images from a spec (augmentation).",
}


def build_parser(command: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines",
                                     description="MedEdit's command line.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(f"pipelines.cli.{name}")
            module.add_arguments(command_parser)
            command_parser.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if a in COMMANDS), None)
    args = build_parser(command).parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except MedEditError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
