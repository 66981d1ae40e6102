"""Upload edits against the renderer's exact counterfactual, and their speed, as JSON: a thin
wrapper kept for old command lines; the commands themselves are

    python -m pipelines eval --uploads --json [--seeds N] [--seed-range reporting|tuning]
        [--attributes a,b] [--directions add,remove] [--edit prompts|slider] [--out FILE]
    python -m pipelines bench --json       # the upload's speed under "uploads", beside the pipeline's

    python scripts/eval_uploads.py --seeds 200 --out eval_uploads.json     # = eval --uploads --json ...
    python scripts/eval_uploads.py --bench                                  # = bench --json
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.cli import main as cli  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--bench" in argv:
        return cli(["bench", "--json", *[a for a in argv if a != "--bench"]])
    return cli(["eval", "--uploads", "--json", *argv])


if __name__ == "__main__":
    raise SystemExit(main())
