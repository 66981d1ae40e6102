"""Where each attribute slider still lands without wrecking the image, on the tuning seeds.

    python scripts/slider_ranges.py                      # measure, print the table, write the report
    python scripts/slider_ranges.py --write-model        # ... and store the ranges in the model's mededit.json
    python scripts/slider_ranges.py --rejudge assets/slider_ranges.json   # the thresholds again, no sampling

For every attribute of the model and both signs (+ adds to a phantom caption without the
attribute, - removes it from one with it), the model samples the source image and edits it with
the slider alone (no typed edit; the model's swap point and locality) at each scale of the grid.
The shipped classifier judges every image. Per scale:
- lands: the classifier reads the attribute as asked (>= 0.5 when added, < 0.5 when removed);
- changed: the share of pixels that moved visibly (metrics.edit_footprint), beside `natural`, the
  share the attribute itself changes in the renderer's own pair (the same phantom off and on);
- psnr: PSNR of the whole image against the source;
- kept: no other attribute of the modality flipped (metrics.no_non_target_flip_rate);
- modality: the classifier's confidence in the image's modality (an image-quality proxy: a
  wrecked image stops looking like either).
A scale holds when it does not wreck the image (thresholds below). A slider's range on each side
starts at 1 (typing the phrase; refusing it would refuse what a prompt does) and reaches each grid
scale above 1 that holds, up to the first that does not: the range stored with the model is what
this model has been seen to survive. Below 1, 12 seeds of half-way edits are noisy (a row at 0.5
may flip more than the one at 1), so they are reported, not used. Stacked sliders (two or
three at once, and the issue's ruler + ink on top of a hair edit) are then measured at scale 1 and
at each slider's own bound.

Seeds come from the tuning range (evaluation/plan.py), never the reporting one.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.data.attributes import attributes_of  # noqa: E402
from pipelines.data.phantoms import caption, render  # noqa: E402
from pipelines.editing.sampling import edit_tail, trajectory  # noqa: E402
from pipelines.evaluation import metrics  # noqa: E402
from pipelines.evaluation.classifier import OUTPUTS, load_classifier, predict_probs  # noqa: E402
from pipelines.evaluation.evaluator import prompts_for  # noqa: E402
from pipelines.evaluation.plan import row_seeds  # noqa: E402
from pipelines.model import conditioners  # noqa: E402
from pipelines.model.info import INFO_FILE  # noqa: E402
from pipelines.model.loaded import decode  # noqa: E402
from pipelines.model.loading import load_model  # noqa: E402
from pipelines.model.offered import EMBEDDED, EMBEDDED_FOLDER  # noqa: E402

SCALES = (0.5, 1.0, 1.5, 2.0, 3.0)
SEED_RANGE = "tuning"  # choices are made on these; the model card's figures come from "reporting"
# A scale wrecks the image when, over the seeds:
MAX_EXTRA_CHANGE = 0.25  # the changed share exceeds the attribute's natural share by more than this
MIN_KEPT = 0.8  # fewer than this share of edits keep every other attribute as it was
MIN_MODALITY = 0.9  # the mean modality confidence falls below this
MAX_LAND_DROP = 0.15  # it lands in fewer edits than the scale before (an overshoot the classifier no longer reads)
# Stacks: (modality, typed style edit (an attribute whose phrase is appended), {slider: sign})
STACKS = (
    ("dermoscopy", None, {"ruler": 1, "ink": 1}),
    ("dermoscopy", "hair", {"ruler": 1, "ink": 1}),  # the case: ruler and ink on a hair edit
    ("dermoscopy", None, {"hair": 1, "gel_bubbles": 1, "vignette": 1}),
    ("dermoscopy", None, {"melanoma": 1, "hair": -1}),
    ("cxr", None, {"pacemaker": 1, "support_devices": 1}),
    ("cxr", None, {"effusion": 1, "cardiomegaly": 1, "marker": 1}),
    ("cxr", None, {"opacity": 1, "pacemaker": -1}),
)


class Meter:
    def __init__(self, model, batch: int):
        self.model, self.batch = model, batch
        self.classifier = load_classifier()
        self.encode = conditioners.cached(model.conditioner.encode, 512)
        d = model.info.defaults
        self.steps, self.scales, self.locality = d["steps"], (d["anatomy_scale"], d["style_scale"]), d["locality"]
        self.swap = round(d["swap_at"] * self.steps)

    def branches(self, prompts, sliders):
        """Each seed's (anatomy, style) prompts with `sliders` [(name, scale)] applied."""
        by_channel = {"anatomy": [], "style": []}
        for name, scale in sliders:
            a = self.model.info.attribute(name)
            by_channel[a["channel"]].append((a["phrase"], scale))
        return conditioners.Branches.cat([conditioners.prompt_branches(self.encode, a, s, by_channel,
                                                                      self.model.info.joined)
                                          for a, s in prompts])

    @torch.no_grad()
    def images(self, seeds, source_prompts, edits, edited_prompts=None):
        """The source images and one edited image per entry of `edits` (each a slider list)."""
        out_source, out_edits = [], [[] for _ in edits]
        for i in range(0, len(seeds), self.batch):
            chunk, prompts = seeds[i:i + self.batch], source_prompts[i:i + self.batch]
            targets = prompts if edited_prompts is None else edited_prompts[i:i + self.batch]
            noise = torch.cat([torch.randn((1, *self.model.latent_shape), generator=torch.Generator().manual_seed(s))
                               for s in chunk])
            neutral = self.branches(prompts, [])
            run = trajectory(self.model.transformer, self.model.scheduler, self.steps, noise, neutral, *self.scales)
            out_source += list(decode(self.model, run[-1].latents).numpy())
            for k, sliders in enumerate(edits):
                tail = edit_tail(self.model.transformer, run, self.swap, neutral, self.branches(targets, sliders),
                                 *self.scales, self.locality)
                out_edits[k] += list(decode(self.model, tail.latents).numpy())
        return out_source, out_edits

    def judge(self, modality, source, edited, asked: dict[str, int]) -> dict:
        """Figures of one set of edits; `asked` maps each slider's attribute to +1 (add) or -1 (remove)."""
        names = [a.name for a in attributes_of(modality)]
        columns = [OUTPUTS.index(n) for n in names]
        p_all = predict_probs(self.classifier, list(source) + list(edited))
        p_source, p_edit = p_all[:len(source), columns], p_all[len(source):, columns]
        cxr = p_all[len(source):, OUTPUTS.index("modality_cxr")]
        modality_conf = cxr if modality == "cxr" else 1 - cxr
        lands = np.ones(len(edited), bool)
        for name, sign in asked.items():
            seen = p_edit[:, names.index(name)] >= 0.5
            lands &= seen if sign > 0 else ~seen
        others = [j for j, n in enumerate(names) if n not in asked]
        flipped = (p_source[:, others] >= 0.5) != (p_edit[:, others] >= 0.5)
        changed = [metrics.edit_footprint(s, e).mean() for s, e in zip(source, edited)]
        psnr = [metrics.psnr_outside(s, e) for s, e in zip(source, edited)]
        return {"lands": float(lands.mean()), "changed": float(np.mean(changed)),
                "psnr": float(np.mean(psnr)), "kept": float((~flipped.any(1)).mean()),
                "modality": float(modality_conf.mean())}


def natural_change(modality: str, attribute: str, seeds, size: int) -> float:
    """The share of pixels the attribute itself changes: the renderer's pair, off and on."""
    shares = []
    for s in seeds:
        factors = prompts_for(modality, attribute, s)[0]
        off, on = (render(modality, {**factors, attribute: v}, s, size).image for v in (False, True))
        shares.append(metrics.edit_footprint(off, on).mean())
    return float(np.mean(shares))


def wrecks(row: dict, natural: float, before: dict | None) -> list[str]:
    why = []
    if row["changed"] > natural + MAX_EXTRA_CHANGE:
        why.append(f"changed {row['changed']:.0%} (natural {natural:.0%})")
    if row["kept"] < MIN_KEPT:
        why.append(f"other attributes kept in {row['kept']:.0%}")
    if row["modality"] < MIN_MODALITY:
        why.append(f"modality confidence {row['modality']:.2f}")
    if before is not None and row["lands"] < before["lands"] - MAX_LAND_DROP:
        why.append(f"lands {row['lands']:.0%} after {before['lands']:.0%}")
    return why


def judge_rows(result: dict) -> None:
    """Each row's reasons to count as wrecked, and each side's bound, from the measured figures."""
    for key in ("add", "remove"):
        before = None
        for row in result[key]["rows"]:
            row["wrecks"] = wrecks(row, result["natural_change"], before)
            before = row
        result[key]["bound"] = bound(result[key]["rows"])


def bound(rows: list[dict]) -> float:
    """1, or the last scale above 1 before the first that wrecks."""
    last = 1.0
    for row in rows:
        if row["scale"] <= 1.0:
            continue
        if row["wrecks"]:
            break
        last = row["scale"]
    return last


def measure_attribute(meter: Meter, modality: str, name: str, n: int, scales) -> dict:
    seeds = row_seeds(SEED_RANGE, name, n)
    prompts = [prompts_for(modality, name, s) for s in seeds]
    natural = natural_change(modality, name, seeds, meter.model.info.image_size)
    result = {"modality": modality, "natural_change": natural, "first_seed": seeds[0], "seeds": n}
    for sign, key, column in ((1, "add", 1), (-1, "remove", 2)):
        source_prompts = [p[column] for p in prompts]  # without the attribute to add, with it to remove
        source, edits = meter.images(seeds, source_prompts, [[(name, sign * s)] for s in scales])
        base = meter.judge(modality, source, source, {name: -sign})  # how often the source lacks it / has it
        rows = [{"scale": scale, **meter.judge(modality, source, edited, {name: sign})}
                for scale, edited in zip(scales, edits)]
        result[key] = {"source_without" if sign > 0 else "source_with": base["lands"], "rows": rows}
    judge_rows(result)
    return result


def measure_stack(meter: Meter, modality, typed, sliders: dict[str, int], scales_of: dict[str, float], n: int):
    """A stack's figures at scale 1 for every slider and at each slider's own bound."""
    first = next(iter(sliders))
    seeds = row_seeds(SEED_RANGE, first, n)
    sources, targets = [], []
    for s in seeds:
        factors = {**prompts_for(modality, first, s)[0], **{k: v < 0 for k, v in sliders.items()}}
        if typed:
            factors[typed] = False
        sources.append(caption(modality, factors, s))
        targets.append(caption(modality, {**factors, typed: True}, s) if typed else sources[-1])
    settings = [{k: float(v) for k, v in sliders.items()},
                {k: v * scales_of[k] for k, v in sliders.items()}]
    source, edits = meter.images(seeds, sources, [list(x.items()) for x in settings], targets)
    asked = {**sliders, **({typed: 1} if typed else {})}
    return [{"sliders": x, "typed": typed, **meter.judge(modality, source, e, asked)} for x, e in zip(settings, edits)]


def measure_stacks(meter: Meter, ranges: dict, n: int) -> list[dict]:
    rows = []
    for modality, typed, sliders in STACKS:
        if all(k in ranges for k in sliders):
            scales_of = {k: ranges[k][1] if v > 0 else -ranges[k][0] for k, v in sliders.items()}
            rows += measure_stack(meter, modality, typed, sliders, scales_of, n)
    return rows


def table(report: dict) -> str:
    lines = [f"{'attribute':16} {'sign':6} {'scale':>5} {'lands':>6} {'changed':>8} {'psnr':>6} {'kept':>5} "
             f"{'modal':>6}  note"]
    for name, r in report["attributes"].items():
        for key in ("add", "remove"):
            for row in r[key]["rows"]:
                mark = "wrecks: " + "; ".join(row["wrecks"]) if row["wrecks"] else ""
                lines.append(f"{name:16} {key:6} {row['scale']:5.1f} {row['lands']:6.0%} {row['changed']:8.1%} "
                             f"{row['psnr']:6.1f} {row['kept']:5.0%} {row['modality']:6.2f}  {mark}")
        lines.append(f"{name:16} range  {-r['remove']['bound']:+.1f} .. {r['add']['bound']:+.1f} "
                     f"(natural change {r['natural_change']:.1%})")
    lines.append("")
    for row in report["stacks"]:
        sliders = ", ".join(f"{k} {v:+.1f}" for k, v in row["sliders"].items())
        typed = f" on a typed {row['typed']} edit" if row["typed"] else ""
        lines.append(f"stack {sliders}{typed}: lands {row['lands']:.0%}, changed {row['changed']:.1%}, "
                     f"psnr {row['psnr']:.1f}, kept {row['kept']:.0%}, modality {row['modality']:.2f}")
    return "\n".join(lines)


def write_ranges(folder: Path, ranges: dict[str, list[float]]) -> None:
    """Store each attribute's measured range in the model's mededit.json (its other keys as they are)."""
    path = folder / INFO_FILE
    info = json.loads(path.read_text())
    for a in info["attributes"]:
        if a["name"] in ranges:
            a["range"] = ranges[a["name"]]
    path.write_text(json.dumps(info, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=EMBEDDED, help="a MedEdit model folder (default: the embedded model)")
    parser.add_argument("--seeds", type=int, default=12, help="tuning seeds per attribute")
    parser.add_argument("--scales", default=",".join(f"{s:g}" for s in SCALES))
    parser.add_argument("--attributes", default="", help="comma-separated; default: all of the model's")
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--out", default="assets/slider_ranges.json")
    parser.add_argument("--write-model", action="store_true", help="store the ranges in the model's mededit.json")
    parser.add_argument("--rejudge", metavar="REPORT", help="apply the thresholds to a report's figures again "
                        "(with --out, measure the stacks again at the new bounds and write the report there)")
    args = parser.parse_args()
    if args.rejudge:
        report = json.loads(Path(args.rejudge).read_text())
        for result in report["attributes"].values():
            judge_rows(result)
        report["ranges"] = {name: [-r["remove"]["bound"], r["add"]["bound"]]
                            for name, r in report["attributes"].items()}
        if args.out != args.rejudge:
            began = time.perf_counter()
            meter = Meter(load_model(report["model"]), args.batch)
            report["stacks"] = measure_stacks(meter, report["ranges"], report["seeds_per_attribute"])
            report["seconds_stacks"] = round(time.perf_counter() - began, 1)
            report["rejudged"] = " ".join(["python scripts/slider_ranges.py"] + sys.argv[1:])
            Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(table(report))
        if args.write_model:
            write_ranges(EMBEDDED_FOLDER if report["model"] == EMBEDDED else Path(report["model"]), report["ranges"])
        return 0
    began = time.perf_counter()
    model = load_model(args.model)
    meter = Meter(model, args.batch)
    scales = tuple(sorted(float(s) for s in args.scales.split(",")))
    wanted = [a for a in model.info.attributes if not args.attributes or a["name"] in args.attributes.split(",")]
    report = {"command": " ".join(["python scripts/slider_ranges.py"] + sys.argv[1:]), "model": args.model,
              "seed_range": SEED_RANGE, "seeds_per_attribute": args.seeds, "scales": list(scales),
              "thresholds": {"max_extra_change": MAX_EXTRA_CHANGE, "min_kept": MIN_KEPT,
                             "min_modality": MIN_MODALITY, "max_land_drop": MAX_LAND_DROP},
              "threads": torch.get_num_threads(), "attributes": {}, "stacks": []}
    for a in wanted:
        report["attributes"][a["name"]] = measure_attribute(meter, a["modality"], a["name"], args.seeds, scales)
        print(f"{a['name']}: {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    ranges = {name: [-r["remove"]["bound"], r["add"]["bound"]] for name, r in report["attributes"].items()}
    report["ranges"] = ranges
    report["stacks"] = measure_stacks(meter, ranges, args.seeds)
    report["seconds"] = round(time.perf_counter() - began, 1)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"{report['seconds']:.0f} s on {report['threads']} thread(s); report in {args.out}")
    if args.write_model:
        write_ranges(EMBEDDED_FOLDER if args.model == EMBEDDED else Path(args.model), ranges)
    return 0


if __name__ == "__main__":
    sys.exit(main())
