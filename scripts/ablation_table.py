"""Print eval JSON reports of ablation variants side by side as a Markdown table.

    python scripts/ablation_table.py "separate + alignment=runs/ablation/eval-full.json" \
        "no alignment=runs/ablation/eval-noalign.json" "joined prompt=runs/ablation/eval-joined.json"
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.data.attributes import ATTRIBUTES  # noqa: E402

CHANNEL = {a.name: a.channel for a in ATTRIBUTES}


def channel_mean(report: dict, key: str, channel: str) -> float:
    return float(np.mean([r[key] for r in report["attributes"] if CHANNEL[r["attribute"]] == channel]))


print("| variant | neutral accuracy | edited has it | CFRT anatomy | CFRT style | no non-target flip | "
      "PSNR outside edit (dB) |")
print("|---|---|---|---|---|---|---|")
for argument in sys.argv[1:]:
    label, path = argument.split("=", 1)
    report = json.loads(Path(path).read_text())
    s = report["summary"]
    print(f"| {label} | {s['neutral_accuracy']:.2f} | {s['edited_target_rate']:.2f} | "
          f"{channel_mean(report, 'cfrt', 'anatomy'):.2f} | {channel_mean(report, 'cfrt', 'style'):.2f} | "
          f"{s['no_non_target_flip']:.2f} | {s['psnr_outside_edit']:.1f} |")
