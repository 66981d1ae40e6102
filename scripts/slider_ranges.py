"""Where each attribute slider still lands without wrecking the image, on the tuning seeds.

    python scripts/slider_ranges.py                      # measure, print the table, write the report
    python scripts/slider_ranges.py --write-model        # ... and store the ranges in the model's mededit.json
    python scripts/slider_ranges.py --rejudge assets/slider_ranges.json   # the thresholds again, no sampling
    python scripts/slider_ranges.py --stacks --out /tmp/stacks.json      # only the stacks, at the stored ranges
    python scripts/slider_ranges.py --stacks --seed-range reporting     # ... on seeds no choice was made on

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
three at once, and the issue's ruler + ink on top of a hair edit) are then measured at scale 1, at
each slider's own bound, and typed (every phrase written into the edited prompts, no slider: what
the model can do at all), with the share of edits in which each slider of the stack lands alone.
`--stacking added` combines stacked sliders as they were before (each direction taken in the
prompt alone, summed: conditioners.slide), the baseline of the measurement.

Seeds come from the tuning range (evaluation/plan.py); `--stacks --seed-range reporting` reports
the stacks on the reporting range, which no choice here was made on.
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
from pipelines.evaluation.classifier import OUTPUTS, model_classifier, predict_probs  # noqa: E402
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
    def __init__(self, model, batch: int, chain: bool = True):
        self.model, self.batch, self.chain = model, batch, chain
        self.classifier = model_classifier(model.domain_folder)  # the model's own, if it ships one
        self.encode = conditioners.cached(model.conditioner.encode, 512)
        d = model.info.defaults
        self.steps, self.scales, self.locality = d["steps"], (d["anatomy_scale"], d["style_scale"]), d["locality"]
        self.swap = round(d["swap_at"] * self.steps)

    def branches(self, prompts, sliders, chain=None):
        """Each seed's (anatomy, style) prompts with `sliders` [(name, scale)] applied (stacked as
        `chain` says, default the meter's)."""
        chain = self.chain if chain is None else chain
        by_channel = {"anatomy": [], "style": []}
        for name, scale in sliders:
            a = self.model.info.attribute(name)
            by_channel[a["channel"]].append((a["phrase"], scale))
        return conditioners.Branches.cat([conditioners.prompt_branches(self.encode, a, s, by_channel,
                                                                      self.model.info.joined, chain)
                                          for a, s in prompts])

    @torch.no_grad()
    def images(self, seeds, source_prompts, edits, edited_prompts=None):
        """The source images and one edited image per entry of `edits` (each a slider list, edited
        from `edited_prompts`, or {"prompts": (anatomy, style) per seed} edited with no slider)."""
        out_source, out_edits = [], [[] for _ in edits]
        for i in range(0, len(seeds), self.batch):
            chunk, prompts = seeds[i:i + self.batch], source_prompts[i:i + self.batch]
            targets = prompts if edited_prompts is None else edited_prompts[i:i + self.batch]
            noise = torch.cat([torch.randn((1, *self.model.latent_shape), generator=torch.Generator().manual_seed(s))
                               for s in chunk])
            neutral = self.branches(prompts, [])
            run = trajectory(self.model.transformer, self.model.scheduler, self.steps, noise, neutral, *self.scales)
            out_source += list(decode(self.model, run[-1].latents).numpy())
            for k, edit in enumerate(edits):
                if isinstance(edit, dict) and "prompts" in edit:
                    branches = self.branches(edit["prompts"][i:i + self.batch], [])
                elif isinstance(edit, dict):  # {"sliders": [...], "chain": bool}: a stacking of its own
                    branches = self.branches(targets, edit["sliders"], edit["chain"])
                else:
                    branches = self.branches(targets, edit)
                tail = edit_tail(self.model.transformer, run, self.swap, neutral, branches,
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
        lands, each = np.ones(len(edited), bool), {}
        for name, sign in asked.items():
            seen = p_edit[:, names.index(name)] >= 0.5
            lands &= seen if sign > 0 else ~seen
            each[name] = float((seen if sign > 0 else ~seen).mean())
        others = [j for j, n in enumerate(names) if n not in asked]
        flipped = (p_source[:, others] >= 0.5) != (p_edit[:, others] >= 0.5)
        changed = [metrics.edit_footprint(s, e).mean() for s, e in zip(source, edited)]
        psnr = [metrics.psnr_outside(s, e) for s, e in zip(source, edited)]
        return {"lands": float(lands.mean()), "lands_each": each, "changed": float(np.mean(changed)),
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


STACK_SETTINGS = ("one", "bound", "typed", "one_added")  # one_added: at 1, stacked the earlier way


def measure_stack(meter: Meter, modality, typed, sliders: dict[str, int], scales_of: dict[str, float], n: int,
                  seed_range: str = SEED_RANGE, wanted=STACK_SETTINGS):
    """A stack's figures at scale 1 for every slider ("one"), at each slider's own bound ("bound"),
    typed (the stack's phrases written into the edited captions instead, no slider), and at 1
    stacked the earlier way ("one_added": conditioners.slide with chain=False), as many of these as
    `wanted` names, all from the same source images."""
    first = next(iter(sliders))
    seeds = row_seeds(seed_range, first, n)
    sources, targets, typed_all = [], [], []
    for s in seeds:
        factors = {**prompts_for(modality, first, s)[0], **{k: v < 0 for k, v in sliders.items()}}
        if typed:
            factors[typed] = False
        sources.append(caption(modality, factors, s))
        targets.append(caption(modality, {**factors, typed: True}, s) if typed else sources[-1])
        typed_all.append(caption(modality, {**factors, **({typed: True} if typed else {}),
                                            **{k: v > 0 for k, v in sliders.items()}}, s))
    one = {k: float(v) for k, v in sliders.items()}
    chosen = {"one": (one, list(one.items())), "typed": (one, {"prompts": typed_all}),
              "one_added": (one, {"sliders": list(one.items()), "chain": False}),
              "bound": ({k: v * scales_of[k] for k, v in sliders.items()},
                        [(k, v * scales_of[k]) for k, v in sliders.items()])}
    settings = [(name, *chosen[name]) for name in STACK_SETTINGS if name in wanted]
    source, edits = meter.images(seeds, sources, [edit for _, _, edit in settings], targets)
    asked = {**sliders, **({typed: 1} if typed else {})}
    return [{"sliders": x, "typed": typed, "as_typed": name == "typed", "setting": name,
             "stacking": "added" if name == "one_added" else ("chained" if meter.chain else "added"),
             "seed_range": seed_range,
             "first_seed": seeds[0], **meter.judge(modality, source, e, asked)}
            for (name, x, _), e in zip(settings, edits)]


def measure_stacks(meter: Meter, ranges: dict, n: int, seed_range: str = SEED_RANGE, which=None,
                   wanted=STACK_SETTINGS) -> list[dict]:
    """The stacks of STACKS (those at the indices `which`, default all) whose sliders the model has."""
    rows = []
    for index, (modality, typed, sliders) in enumerate(STACKS):
        if all(k in ranges for k in sliders) and (which is None or index in which):
            scales_of = {k: ranges[k][1] if v > 0 else -ranges[k][0] for k, v in sliders.items()}
            measured = measure_stack(meter, modality, typed, sliders, scales_of, n, seed_range, wanted)
            print("\n".join(stack_lines(measured)), file=sys.stderr, flush=True)  # a long run's rows as they come
            rows += measured
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
    return "\n".join(lines + stack_lines(report["stacks"]))


def stack_lines(stacks: list[dict]) -> list[str]:
    lines = []
    for row in stacks:
        sliders = ", ".join(f"{k} {v:+.1f}" for k, v in row["sliders"].items())
        typed = f" on a typed {row['typed']} edit" if row["typed"] else ""
        how = "typed instead" if row.get("as_typed") else f"sliders, {row.get('stacking', 'added')}"
        each = " ".join(f"{k} {v:.0%}" for k, v in row.get("lands_each", {}).items())
        lines.append(f"stack {sliders}{typed} ({how}): lands {row['lands']:.0%} ({each}), changed "
                     f"{row['changed']:.1%}, psnr {row['psnr']:.1f}, kept {row['kept']:.0%}, "
                     f"modality {row['modality']:.2f}")
    return lines


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
    parser.add_argument("--stacks", action="store_true",
                        help="measure only the stacks, at the ranges stored with the model")
    parser.add_argument("--seed-range", choices=("tuning", "reporting"), default=SEED_RANGE,
                        help="with --stacks: the seeds (reporting: the range no choice was made on)")
    parser.add_argument("--stacking", choices=("chained", "added"), default="chained",
                        help="how stacked sliders combine (conditioners.slide): added is the earlier way")
    parser.add_argument("--which", default="", help="with --stacks: comma-separated indices into STACKS "
                        "(default: all)")
    parser.add_argument("--settings", default=",".join(STACK_SETTINGS),
                        help=f"with --stacks: comma-separated, of {','.join(STACK_SETTINGS)}")
    parser.add_argument("--rejudge", metavar="REPORT", help="apply the thresholds to a report's figures again "
                        "(with --out, measure the stacks again at the new bounds and write the report there)")
    args = parser.parse_args()
    chain = args.stacking == "chained"
    which = [int(i) for i in args.which.split(",")] if args.which else None
    settings = tuple(x.strip() for x in args.settings.split(","))
    if not set(settings) <= set(STACK_SETTINGS) or (which and not all(0 <= i < len(STACKS) for i in which)):
        parser.error(f"--settings: of {','.join(STACK_SETTINGS)}; --which: indices below {len(STACKS)}")
    if args.stacks:
        began = time.perf_counter()
        model = load_model(args.model)
        ranges = {a["name"]: list(a.get("range", (-1.0, 1.0))) for a in model.info.attributes}
        report = {"command": " ".join(["python scripts/slider_ranges.py"] + sys.argv[1:]), "model": args.model,
                  "seed_range": args.seed_range, "seeds_per_stack": args.seeds, "stacking": args.stacking,
                  "ranges": ranges, "threads": torch.get_num_threads(),
                  "stacks": measure_stacks(Meter(model, args.batch, chain), ranges, args.seeds, args.seed_range,
                                           which, settings)}
        report["seconds"] = round(time.perf_counter() - began, 1)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print("\n".join(stack_lines(report["stacks"])))
        print(f"{report['seconds']:.0f} s on {report['threads']} thread(s); report in {args.out}")
        return 0
    if args.rejudge:
        report = json.loads(Path(args.rejudge).read_text())
        for result in report["attributes"].values():
            judge_rows(result)
        report["ranges"] = {name: [-r["remove"]["bound"], r["add"]["bound"]]
                            for name, r in report["attributes"].items()}
        if args.out != args.rejudge:
            began = time.perf_counter()
            meter = Meter(load_model(report["model"]), args.batch, chain)
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
    meter = Meter(model, args.batch, chain)
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
