"""The evaluator: how well a model draws and edits each attribute, judged by the model's classifier.

For every attribute and seed: the phantom captioner writes the seed's prompts with the attribute
off (the neutral image) and on (the edit), the model samples the neutral image and edits at several
swap points from the same noise, and the classifier judges them all. The other factors of a neutral
prompt are random, so pooling the neutral images of a modality also measures each attribute's
accuracy when it is asked for and when it is not (`attribute_accuracy`). Swap point 0 (the edited
prompts from the first step) is the naive way, regenerating from scratch, measured in the same run.
The phantom renderer's own counterfactual pair (the same seed drawn with the attribute off and on)
is judged too: its no-flip rate is the ceiling this classifier allows. Seeds are processed in
batches through the same sampling functions the pipeline uses, edits as local as the model's
default `locality`.

Seeds come from the reporting range unless the tuning range is asked for; each attribute has its
own block in each (plan.py).

Lesion (dermoscopy rows, lesion_check.py): how many neutral and edited images show a lesion, by the
classifier's `lesion` output, with the seeds of those that do not, and the renderer's phantoms as
the ceiling; pooled in the report's `lesion` ("dermoscopy images with a lesion").

Distribution (per modality): FID and KID (torchmetrics, on the classifier's features) of the
neutral images and of the edits against independent phantoms of the same factor distribution,
each beside its floor, the renderer's own images against the same phantoms (distribution.py).
"""

import time

import numpy as np
import torch
from tqdm import tqdm

from pipelines.model import conditioners
from pipelines.evaluation import metrics
from pipelines.core.limits import LOCALITY_RANGE, SCALE_RANGE, STEPS_RANGE, SWAP_RANGE
from pipelines.data.attributes import MODALITIES, attributes_of
from pipelines.evaluation.classifier import OUTPUTS, lesion_column, model_classifier, predict_probs
from pipelines.evaluation.lesion_check import LesionTally, lesion_summary
from pipelines.evaluation.distribution import DistanceToPhantoms
from pipelines.evaluation.plan import (BATCH, BATCH_RANGE, DEFAULT_RANGE, DEFAULT_SEEDS, evaluation_jobs,
                                      reference_seeds, row_seeds)
from pipelines.editing.requests import integer, number
from pipelines.core.errors import MedEditError
from pipelines.model.loaded import LoadedModel, decode
from pipelines.data.phantoms import caption, render, sample_factors
from pipelines.editing.sampling import Branches, edit_tail, trajectory

CFRT_SWAPS = (0.1, 0.2, 0.3)  # the paper's t* in {5, 10, 15} of 50 steps
NAIVE_SWAP = 0.0


def prompts_for(modality: str, attribute: str, seed: int) -> tuple[dict, tuple[str, str], tuple[str, str]]:
    """The seed's factors with the attribute off, and the neutral and edited caption pairs."""
    factors = {**sample_factors(modality, seed), attribute: False}
    neutral = caption(modality, factors, seed)
    edited = caption(modality, {**factors, attribute: True}, seed)
    return factors, neutral, edited


def phantom_pair(modality: str, attribute: str, factors: list[dict], seeds: list[int]):
    """The renderer's own counterfactual pairs: each seed's phantom with the attribute off, and
    the same with it on (two lists of images)."""
    return tuple([render(modality, {**f, attribute: on}, s).image for f, s in zip(factors, seeds)]
                 for on in (False, True))


def preservation(neutral, edited, naive) -> dict[str, list[float]]:
    """Per seed: PSNR and SSIM outside the edit's footprint (where more than half the image is
    left), the footprint's area, and PSNR over the whole image for the edit and the naive way."""
    out = {"psnr": [], "ssim": [], "area": [], "whole": [], "whole_naive": []}
    for n_img, e_img, naive_img in zip(neutral, edited, naive):
        footprint = metrics.edit_footprint(n_img, e_img)  # preservation is measured outside it
        out["area"].append(footprint.mean())
        if footprint.mean() < 0.5:  # else too little is left outside to measure
            out["psnr"].append(metrics.psnr_outside(n_img, e_img, footprint))
            try:
                out["ssim"].append(metrics.ssim_outside(n_img, e_img, footprint))
            except MedEditError:  # the dilated footprint covers every SSIM window
                pass
        out["whole"].append(metrics.psnr_outside(n_img, e_img))
        out["whole_naive"].append(metrics.psnr_outside(n_img, naive_img))
    return out


class Evaluator:
    def __init__(self, model: LoadedModel, steps: int | None = None, anatomy_scale=None,
                 style_scale=None, batch: int = BATCH, locality=None):
        defaults = model.info.defaults
        pick = lambda value, key: defaults[key] if value is None else value  # noqa: E731
        self.model = model
        self.batch = integer("batch", batch, *BATCH_RANGE)
        self.locality = number("locality", pick(locality, "locality"), *LOCALITY_RANGE)
        self.steps = integer("steps", pick(steps, "steps"), *STEPS_RANGE)
        self.scales = (number("anatomy scale", pick(anatomy_scale, "anatomy_scale"), *SCALE_RANGE),
                       number("style scale", pick(style_scale, "style_scale"), *SCALE_RANGE))
        self.classifier = model_classifier(model.domain_folder)  # the model's own, if it ships one
        self.encode = conditioners.cached(model.conditioner.encode, 256)  # a batch's prompts, read twice

    def cut(self, prompts: tuple[str, str]) -> bool:
        """Whether the model's text window cuts the (anatomy, style) prompts."""
        return bool(conditioners.cut_notes(self.encode, *prompts, joined=self.model.info.joined))

    def branches(self, prompts: list[tuple[str, str]]) -> Branches:
        return Branches.cat([conditioners.prompt_branches(self.encode, a, s, joined=self.model.info.joined)
                             for a, s in prompts])

    @torch.no_grad()
    def run_batch(self, seeds, neutral_prompts, edited_prompts, swaps):
        """Neutral images and one edited image per swap point for a batch of seeds; the naive
        swap (regenerating) is never local."""
        noise = torch.cat([torch.randn((1, *self.model.latent_shape),
                                       generator=torch.Generator().manual_seed(s)) for s in seeds])
        noise = noise.to(self.model.transformer.device)
        neutral_b, edited_b = self.branches(neutral_prompts), self.branches(edited_prompts)
        run = trajectory(self.model.transformer, self.model.scheduler, self.steps, noise, neutral_b,
                         *self.scales)
        edited = {}
        for swap in swaps:
            locality = 0.0 if swap == NAIVE_SWAP else self.locality
            tail = edit_tail(self.model.transformer, run, round(swap * self.steps), neutral_b, edited_b,
                             *self.scales, locality)
            edited[swap] = decode(self.model, tail.latents).numpy()
        return decode(self.model, run[-1].latents).numpy(), edited

    def attribute(self, modality: str, attribute: str, seeds: list[int], swap_at: float,
                  reference: list[int], distances: dict) -> dict:
        """One row of the report. `distances` ({"neutral", "edited"}: DistanceToPhantoms) is fed
        the generated images, the phantoms of the same factors, and independent phantoms drawn
        at the `reference` seeds."""
        names = [a.name for a in attributes_of(modality)]
        columns = [OUTPUTS.index(n) for n in names]
        target = names.index(attribute)
        swaps = sorted({NAIVE_SWAP, swap_at, *CFRT_SWAPS})
        p_neutral, p_edited, intended = [], {s: [] for s in swaps}, []
        p_truth = {False: [], True: []}  # the renderer's own pairs: attribute off, on
        kept, cut = {}, []
        lesions = LesionTally()
        dermoscopy = modality == "dermoscopy"
        for i in range(0, len(seeds), self.batch):
            chunk = seeds[i:i + self.batch]
            rows = [prompts_for(modality, attribute, s) for s in chunk]
            cut += [self.cut(r[1]) or self.cut(r[2]) for r in rows]
            neutral, edited = self.run_batch(chunk, [r[1] for r in rows], [r[2] for r in rows], swaps)
            every = predict_probs(self.classifier, list(neutral))
            p_neutral.append(every[:, columns])
            if dermoscopy:
                lesions.add("neutral", chunk, lesion_column(every))
            for s in swaps:
                every = predict_probs(self.classifier, list(edited[s]))
                p_edited[s].append(every[:, columns])
                if dermoscopy and s == swap_at:
                    lesions.add("edited", chunk, lesion_column(every))
            intended += [[int(r[0][n]) for n in names] for r in rows]
            truth_off, truth_on = phantom_pair(modality, attribute, [r[0] for r in rows], chunk)
            every = predict_probs(self.classifier, truth_off + truth_on)
            judged = every[:, columns]
            p_truth[False].append(judged[:len(chunk)])
            p_truth[True].append(judged[len(chunk):])
            if dermoscopy:
                lesions.add("phantom", chunk + chunk, lesion_column(every))
            others = reference[i:i + self.batch]
            reference_off, reference_on = phantom_pair(
                modality, attribute, [prompts_for(modality, attribute, s)[0] for s in others], others)
            distances["neutral"].update(list(neutral), truth_off, reference_off)
            distances["edited"].update(list(edited[swap_at]), truth_on, reference_on)
            for key, values in preservation(neutral, edited[swap_at], edited[NAIVE_SWAP]).items():
                kept.setdefault(key, []).extend(values)
        p_neutral = np.concatenate(p_neutral)
        p_edited = {s: np.concatenate(v) for s, v in p_edited.items()}
        along = np.stack([p_edited[s] for s in CFRT_SWAPS], 1)  # [S, T, K]
        accuracy = metrics.attribute_accuracy(p_neutral, np.array(intended), names=names)
        p_off, p_on = (np.concatenate(p_truth[on]) for on in (False, True))
        mean = lambda values: float(np.mean(values)) if values else None  # noqa: E731
        return {
            "modality": modality, "attribute": attribute, "seeds": len(seeds), "first_seed": seeds[0],
            "swap_at": swap_at,
            "neutral_accuracy": accuracy["mean"],  # over every attribute of this row's neutral images
            "neutral_accuracy_by_attribute": accuracy["by_name"],
            "edited_target_rate": float((p_edited[swap_at][:, target] >= 0.5).mean()),
            "cfrt": float(metrics.cfrt(p_neutral, along, target)) if len(names) > 1 else None,
            "no_non_target_flip": float(metrics.no_non_target_flip_rate(
                p_neutral, p_edited[swap_at][:, None], target)),
            "flips_by_attribute": metrics.flips_by_attribute(p_neutral, p_edited[swap_at], target, names),
            "psnr_whole": mean(kept["whole"]),
            "psnr_outside_edit": mean(kept["psnr"]),
            "ssim_outside_edit": mean(kept["ssim"]),
            "edit_area": mean(kept["area"]),
            "naive_psnr_whole": mean(kept["whole_naive"]),
            "naive_edited_target_rate": float((p_edited[NAIVE_SWAP][:, target] >= 0.5).mean()),
            "naive_no_non_target_flip": float(metrics.no_non_target_flip_rate(
                p_neutral, p_edited[NAIVE_SWAP][:, None], target)),
            "phantom_no_non_target_flip": float(metrics.no_non_target_flip_rate(
                p_off, p_on[:, None], target)),
            "prompts_cut": float(np.mean(cut)),  # seeds whose neutral or edited prompts overflow the text window
            "lesion": lesions.row(),  # dermoscopy: images with a lesion (None: not judged)
        }


def evaluate(model: LoadedModel, seeds: int = DEFAULT_SEEDS, swap_at: float | None = None,
             modalities=MODALITIES, attributes=None, steps=None, batch: int = BATCH, progress=True,
             anatomy_scale=None, style_scale=None, locality=None, seed_range: str = DEFAULT_RANGE) -> dict:
    """The report: one row per attribute on `seeds` seeds of `seed_range` (plan.py), FID / KID per
    modality, and the mean of every row figure."""
    jobs = evaluation_jobs(modalities, attributes)
    row_seeds(seed_range, jobs[0][1], seeds)  # checks the range and the count before any sampling
    evaluator = Evaluator(model, steps, anatomy_scale, style_scale, batch, locality)
    swap_at = number("swap point", model.info.defaults["swap_at"] if swap_at is None else swap_at,
                     *SWAP_RANGE)
    began = time.perf_counter()
    rows = []
    distances = {m: {kind: DistanceToPhantoms(evaluator.classifier) for kind in ("neutral", "edited")}
                 for m in dict.fromkeys(m for m, _ in jobs)}
    for modality, attribute in tqdm(jobs, desc="evaluating", disable=not progress):
        rows.append(evaluator.attribute(modality, attribute, row_seeds(seed_range, attribute, seeds), swap_at,
                                        reference_seeds(seed_range, attribute, seeds), distances[modality]))
    pool_attribute_accuracy(rows)
    return {"model_id": model.model_id, "model_revision": model.revision, "steps": evaluator.steps,
            "scales": evaluator.scales, "seeds_per_attribute": seeds, "seed_range": seed_range,
            "swap_at": swap_at, "locality": evaluator.locality, "threads": torch.get_num_threads(),
            "seconds": round(time.perf_counter() - began, 1), "attributes": rows,
            "summary": summarize(rows), "lesion": lesion_summary(rows),
            "distribution": {m: {kind: d.compute() for kind, d in by_kind.items()}
                             for m, by_kind in distances.items()}}


def pool_attribute_accuracy(rows: list[dict]) -> None:
    """Each row's `attribute_accuracy`: how often the classifier reads its attribute as the prompt
    asked, over the neutral images of every row of its modality (all rows have the same seed count).

    A row's own `neutral_accuracy` mixes all attributes of its images; this is the per-attribute
    figure. With every attribute of a modality evaluated, the two have the same mean.
    """
    for row in rows:
        pooled = [r["neutral_accuracy_by_attribute"][row["attribute"]] for r in rows
                  if r["modality"] == row["modality"]]
        row["attribute_accuracy"] = float(np.mean(pooled))


def summarize(rows: list[dict]) -> dict:
    mean = lambda key: float(np.mean([r[key] for r in rows if r[key] is not None]))  # noqa: E731
    return {key: mean(key) for key in ("neutral_accuracy", "attribute_accuracy", "edited_target_rate",
                                       "cfrt", "no_non_target_flip", "psnr_whole", "psnr_outside_edit",
                                       "ssim_outside_edit", "edit_area", "naive_psnr_whole",
                                       "naive_edited_target_rate", "naive_no_non_target_flip",
                                       "phantom_no_non_target_flip", "prompts_cut")}
