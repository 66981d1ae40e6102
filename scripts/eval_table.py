"""Print an eval JSON report (python -m pipelines eval --json) as a Markdown table."""

import json
import sys


def fmt(value, digits=2):
    return "–" if value is None else f"{value:.{digits}f}"


def most_flipped(row) -> str:
    """The other attribute this row's edits flip most, which way, and how often."""
    flips = row.get("flips_by_attribute")  # absent in reports made before it, and in the mean
    if not flips:
        return "–"
    name, way = max(((n, w) for n in flips for w in ("on", "off")), key=lambda nw: flips[nw[0]][nw[1]])
    return "none" if flips[name][way] == 0 else f"{name} {way} {flips[name][way]:.2f}"


report = json.load(open(sys.argv[1]))
seed_range = report.get("seed_range", "tuning")  # reports made before the ranges drew tuning seeds
print(f"{report['seeds_per_attribute']} {seed_range} seeds per attribute, {report['steps']} steps, guidance "
      f"{report['scales'][0]:g}/{report['scales'][1]:g}, swap at {report['swap_at']}, locality "
      f"{report.get('locality', 0.0):g}; naive = the edited prompts from step 0 (regenerating); "
      f"phantom = the renderer's own pair (the ceiling).\n")
print("| attribute | attribute accuracy | edited has it | CFRT | no non-target flip | no-flip, phantom | "
      "most flipped | PSNR whole (dB) | PSNR outside edit | edited has it, naive | PSNR whole, naive | "
      "prompts cut |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in report["attributes"] + [{"attribute": "**mean**", **report["summary"]}]:
    print(f"| {r['attribute']} | {fmt(r['attribute_accuracy'])} | {fmt(r['edited_target_rate'])} | "
          f"{fmt(r['cfrt'])} | {fmt(r['no_non_target_flip'])} | "
          f"{fmt(r.get('phantom_no_non_target_flip'))} | {most_flipped(r)} | {fmt(r['psnr_whole'], 1)} | "
          f"{fmt(r['psnr_outside_edit'], 1)} | {fmt(r['naive_edited_target_rate'])} | "
          f"{fmt(r['naive_psnr_whole'], 1)} | {fmt(r.get('prompts_cut'))} |")  # absent in older reports

distribution = report.get("distribution")  # absent in reports made before it
if distribution:
    print("\nFID and KID on the attribute classifier's features (torchmetrics), against independent "
          "phantoms of the same factor distribution; floor = the renderer's own images against the "
          "same phantoms, the score of a generator indistinguishable from it at this sample size.\n")
    print("| modality | images | FID | FID floor | KID | KID floor |")
    print("|---|---|---|---|---|---|")
    for modality, kinds in distribution.items():
        for kind, d in kinds.items():
            kid = lambda key: "–" if d[key] is None else f"{d[key]:.3f} ± {d[key + '_std']:.3f}"  # noqa: E731
            print(f"| {modality}, {kind} | {d['images']} | {fmt(d['fid'])} | {fmt(d['fid_floor'])} | "
                  f"{kid('kid')} | {kid('kid_floor')} |")
