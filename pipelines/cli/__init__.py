"""`python -m pipelines COMMAND ...` (installed: `mededit COMMAND ...`): dispatch to pipelines/cli/COMMAND.py.

Only the chosen command's module is imported, so `phantoms` starts without loading torch.
Bad input, argparse's own errors included, ends with one line on stderr and exit code 2, never a
traceback or a usage block. SIGTERM ends a command as Ctrl-C does: its cleanup runs (temporary
folders are removed) and the exit code is 143.
"""

import argparse
import importlib
import inspect
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from pipelines.core.errors import MedEditError


COMMANDS = {
    "phantoms": "Render procedural phantoms with captions, labels and masks (imagefolder layout).",
    "generate": "Sample one image from anatomy and style prompts.",
    "edit": "Neutral and edited image from one noise, swapping the prompts at --swap-at; or edit your "
            "own image (--image: PNG, JPEG or DICOM).",
    "series": "A Bezier series of frames from neutral to edited, with animation and manifest; or from "
              "your own image (--image).",
    "train": "Train a model: vae, dit, classifier or lora.",
    "eval": "Measure edit quality: attribute accuracy, CFRT, preservation; --uploads: edits of "
            "uploaded images against the true counterfactual.",
    "bench": "Measure speed against the stock diffusers pipeline.",
    "convert": "Convert CheXpert, ISIC 2019 or a generic CSV into an imagefolder dataset.",
    "synthesize": "Write an imagefolder dataset of generated images from a spec (augmentation).",
    "fit-domain": "Fit a model's domain check (how far an upload lies from its training images) into "
                  "its folder.",
}


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that `finally` and cleanup handlers run."""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are a MedEditError (one line, exit 2) instead of usage + exit;
    every sub-command parser is made from this class too."""

    def error(self, message):
        raise MedEditError(f"{self.prog}: {message} (see {self.prog} --help)")


def program_name() -> str:
    """What the user typed, for messages and --help: the installed `mededit` (pyproject.toml's
    console command) or `python -m pipelines`."""
    return "mededit" if Path(sys.argv[0]).stem == "mededit" else "python -m pipelines"


def build_parser(command: str | None, argv: list[str] = ()) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=program_name(), description="MedEdit's command line.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(f"pipelines.cli.{name.replace('-', '_')}")
            # A command with sub-choices of its own (train) reads argv to import only the chosen one.
            if "argv" in inspect.signature(module.add_arguments).parameters:
                module.add_arguments(command_parser, argv=list(argv))
            else:
                module.add_arguments(command_parser)
            command_parser.set_defaults(run=module.run)
    return parser


@contextmanager
def sigterm_as_exception():
    """While a command runs, SIGTERM raises Terminated (main thread only: signals need it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def one_line(message) -> str:
    return " ".join(str(message).split())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if a in COMMANDS), None)
    try:
        with sigterm_as_exception():
            args = build_parser(command, argv).parse_args(argv)
            return int(args.run(args) or 0)
    except MedEditError as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
