"""Merge `eval --uploads` reports run in parts (one modality, attribute or direction per process,
one thread each: what two cores do fastest) into one report with the summary over all rows.

    python scripts/merge_upload_reports.py part1.json part2.json ... --out eval_uploads.json

The parts must share the model, settings and seeds per row; their seconds are added up.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.core.files import write_atomic  # noqa: E402
from pipelines.evaluation.uploads import summarize  # noqa: E402

# What every part must agree on for the rows to belong in one report.
SHARED = ("model_id", "model_revision", "steps", "scales", "swap_at", "locality", "edit", "refresh",
          "seeds_per_row", "seed_range", "inversion")


def merge(parts: list[dict]) -> dict:
    first = parts[0]
    for part in parts[1:]:
        differing = [k for k in SHARED if part.get(k) != first.get(k)]
        if differing:
            raise SystemExit(f"the parts differ in {', '.join(differing)}; merge only runs of one setting")
    rows = [row for part in parts for row in part["rows"]]
    seen = [(r["modality"], r["attribute"], r["direction"]) for r in rows]
    if len(set(seen)) != len(seen):
        raise SystemExit("a row is in more than one part")
    return {**{k: first.get(k) for k in SHARED}, "threads": sorted({p.get("threads") for p in parts}),
            "seconds": round(sum(p["seconds"] for p in parts), 1), "rows": rows, "summary": summarize(rows)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="+", help="reports of eval --uploads --json --out")
    parser.add_argument("--out", required=True, help="the merged report")
    args = parser.parse_args(argv)
    merged = merge([json.loads(Path(p).read_text()) for p in args.parts])
    write_atomic(Path(args.out), json.dumps(merged, indent=1).encode())
    print(json.dumps(merged["summary"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
