"""Edits of uploaded images measured against the ground truth: the renderer's exact counterfactual.

For every attribute and direction (adding it, removing it) and every seed: a phantom the model never
saw is rendered with the attribute off (adding) or on (removing), written as a PNG and read back
through the upload path (data.uploads: read, resize to the model's size), inverted under its own
captions, and edited at the model's default swap point and locality, by the counterfactual's
captions typed as the edited prompts (as evaluation.evaluator edits generated images) or by the
attribute's slider at +1 or -1 (`edit`), optionally with the last steps' noise drawn fresh
(`refresh`, Edit.refresh). The renderer draws the same phantom with the attribute
toggled: the true counterfactual.
In the same run:
  - the naive way, SDEdit: the upload's latent noised to the swap point with fresh noise and
    denoised under the edited prompts (no inversion, no mask);
  - the autoencoder's round trip of the true counterfactual: the best any latent-space edit can do;
  - the inverted run replayed under the source prompts against the round trip of the upload: the
    inversion is exact when they are the same latents to float tolerance (and the same image but
    for a rounding step here and there).
"ours" is what the pipeline returns: the decoded edit where it acted, the upload's own pixels
elsewhere (regions.paste_outside); "decoded" is the edit decoded whole, for comparison.
The classifier judges whether an edit lands (the attribute present afterwards when added, absent
when removed) and whether another attribute flipped (against the reconstruction's labels). PSNR
against the source is measured outside the counterfactual's changed region (the pixels where the
true counterfactual differs from the source), and once more outside that region and the edit's own
footprint (the pixels ours moved visibly, metrics.edit_footprint): a model that draws a hair where
the renderer drew none loses PSNR in the first, not in the second. In dermoscopy the PSNR inside
the source's lesion is reported too, apart for the edits that flipped another attribute and those
that did not (whether a flip came with a changed lesion), beside the true counterfactual's (how
much of the lesion the toggled attribute itself covers). Seeds come from
evaluation.plan's ranges: adding uses a row's first n seeds, removing the next n.

`bench_uploads` measures speed: an uploaded PNG to its first edit (read, fit, invert, edit,
decode), and a re-edit by slider from the cached inversion.
"""

import copy
import io
import statistics
import time

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from pipelines.core.errors import MedEditError
from pipelines.data.attributes import attributes_of
from pipelines.data.phantom_size import render_size
from pipelines.data.phantoms import SIZE_RANGE, render, sample_factors
from pipelines.data.uploads import fit, read_image
from pipelines.editing.inversion import encode, invert
from pipelines.editing.pipeline import MedEditPipeline
from pipelines.editing.regions import paste_outside
from pipelines.editing.requests import Edit, Sampling
from pipelines.editing.sampling import Prefix, advance
from pipelines.editing.terms import Term, edit_inverted
from pipelines.evaluation import metrics
from pipelines.evaluation.classifier import OUTPUTS, model_classifier, predict_probs
from pipelines.evaluation.plan import BATCH, DEFAULT_RANGE, DEFAULT_SEEDS, evaluation_jobs, row_seeds
from pipelines.evaluation.upload_plan import DIRECTIONS, EDITS, SEED_BLOCKS, checked_directions
from pipelines.model import conditioners
from pipelines.model.conditioners import Branches
from pipelines.model.loaded import LoadedModel, decode


def sdedit(transformer, scheduler, clean: torch.Tensor, steps: int, swap: int, edited: Branches,
           anatomy_scale: float, style_scale: float, seed: int) -> torch.Tensor:
    """The naive edit: `clean` noised to step `swap` with fresh noise, denoised under `edited`
    with the model's own (deterministic) solver from there."""
    scheduler = copy.deepcopy(scheduler)
    scheduler.set_timesteps(steps)
    if swap >= steps:
        return clean
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(seed)).to(clean.device, clean.dtype)
    noisy = scheduler.add_noise(clean, noise, scheduler.timesteps[swap].reshape(1))
    return advance(transformer, Prefix(noisy, scheduler, swap), steps, edited, anatomy_scale, style_scale).latents


def as_upload(image: np.ndarray, size: int) -> np.ndarray:
    """The phantom through the upload path: PNG bytes, read and fitted as a user's file is."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return fit(read_image(buffer.getvalue()), size).image


def psnr(a: np.ndarray, b: np.ndarray, outside: np.ndarray | None = None) -> float:
    return metrics.psnr_outside(a, b, outside)


class UploadEvaluator:
    def __init__(self, model: LoadedModel, steps=None, anatomy_scale=None, style_scale=None, swap_at=None,
                 locality=None, batch: int = BATCH, edit: str = "prompts", refresh: float = 0.0):
        defaults = model.info.defaults
        pick = lambda value, key: defaults[key] if value is None else value  # noqa: E731
        if edit not in EDITS:
            raise MedEditError(f"edit {edit!r}: choose one of {', '.join(EDITS)}")
        self.model, self.batch, self.edit = model, batch, edit
        self.steps, self.swap_at, self.locality = pick(steps, "steps"), pick(swap_at, "swap_at"), pick(locality, "locality")
        self.scales = (pick(anatomy_scale, "anatomy_scale"), pick(style_scale, "style_scale"))
        request = Edit(swap_at=self.swap_at, refresh=refresh)
        self.swap, self.refresh = request.swap_step(self.steps), request.refresh
        self.refresh_steps = request.refresh_steps(self.steps)
        self.classifier = model_classifier(model.domain_folder)  # the model's own, if it ships one
        self.encode = conditioners.cached(model.conditioner.encode, 256)

    def branches(self, prompts, sliders=None) -> Branches:
        return Branches.cat([conditioners.prompt_branches(self.encode, a, s, sliders, self.model.info.joined)
                             for a, s in prompts])

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        return decode(self.model, latents).numpy()

    @torch.no_grad()
    def run_batch(self, modality: str, attribute: str, add: bool, seeds: list[int]) -> dict:
        """Sources, truths and the images made from them for one batch of seeds."""
        size, attr = self.model.info.image_size, self.model.info.attribute(attribute)
        drawn = render_size(size)  # larger than the model's, box-filtered down by the upload path
        sources, truths, lesions = [], [], []
        for seed in seeds:
            factors = {**sample_factors(modality, seed), attribute: not add}
            sources.append(render(modality, factors, seed, drawn))
            truths.append(render(modality, {**factors, attribute: add}, seed, drawn))
            if "lesion" in sources[-1].masks:  # fitted as the image is
                lesion = np.repeat(sources[-1].masks["lesion"][..., None], 3, 2).astype(np.uint8) * 255
                lesions.append(as_upload(lesion, size)[..., 0] >= 128)
        uploads = np.stack([as_upload(p.image, size) for p in sources])
        truth = np.stack([as_upload(p.image, size) for p in truths])
        transformer, device = self.model.transformer, self.model.transformer.device
        clean = encode(self.model.vae, torch.from_numpy(uploads)).to(device, transformer.dtype)
        source = self.branches([(p.anatomy, p.style) for p in sources])
        if self.edit == "slider":
            edited = self.branches([(p.anatomy, p.style) for p in sources],
                                   {attr["channel"]: [(attr["phrase"], 1.0 if add else -1.0)]})
        else:  # the counterfactual's captions typed as the edited prompts, as the evaluator does
            edited = self.branches([(p.anatomy, p.style) for p in truths])
        inversion = invert(transformer, self.model.scheduler, clean, self.steps, source, *self.scales, seeds[0])
        ours, changed = edit_inverted(transformer, inversion, self.swap, source, [Term(attribute, edited)],
                                      *self.scales, self.locality, refresh=self.refresh_steps)
        naive = sdedit(transformer, self.model.scheduler, clean, self.steps, self.swap, edited, *self.scales, seeds[0])
        truth_clean = encode(self.model.vae, torch.from_numpy(truth))
        decoded = self.decode(ours.latents)
        pasted = np.stack([paste_outside(u, d, None if changed is None else changed[j:j + 1])
                           for j, (u, d) in enumerate(zip(uploads, decoded))])
        # Replaying the steps is bitwise the inversion's run (tests), which lands here:
        error = ((inversion.landed - clean).abs().amax((1, 2, 3)) / clean.abs().amax((1, 2, 3)))
        return {"source": uploads, "truth": truth, "round_trip": self.decode(clean),
                "reconstruction": self.decode(inversion.states[-1].latents), "ours": pasted, "decoded": decoded,
                "replayed": self.decode(inversion.landed),
                "naive": self.decode(naive), "truth_round_trip": self.decode(truth_clean),
                "latent_error": error.cpu().numpy(), "lesion": lesions}

    def row(self, modality: str, attribute: str, direction: str, seeds: list[int]) -> dict:
        names = [a.name for a in attributes_of(modality)]
        columns, target = [OUTPUTS.index(n) for n in names], names.index(attribute)
        add = direction == "add"
        kinds = ("source", "reconstruction", "ours", "decoded", "naive", "truth")
        probs, values = {k: [] for k in kinds}, {}
        record = lambda key, value: values.setdefault(key, []).append(value)  # noqa: E731
        for i in range(0, len(seeds), self.batch):
            out = self.run_batch(modality, attribute, add, seeds[i:i + self.batch])
            for k in kinds:
                probs[k].append(predict_probs(self.classifier, list(out[k]))[:, columns])
            for j in range(len(out["source"])):
                changed = (out["truth"][j] != out["source"][j]).any(2)  # the counterfactual's region
                footprint = metrics.edit_footprint(out["source"][j], out["ours"][j])  # where ours moved visibly
                record("footprint_area", float(footprint.mean()))
                if not changed.all():
                    for k in ("ours", "decoded", "naive", "reconstruction", "round_trip"):
                        record(f"psnr_outside_{k}", psnr(out["source"][j], out[k][j], changed))
                    record("psnr_outside_spill", psnr(out["reconstruction"][j], out["decoded"][j], changed))
                if not (changed | footprint).all():  # what is left once the edit's own strokes are set aside
                    record("psnr_outside_both", psnr(out["source"][j], out["ours"][j], changed | footprint))
                for k in ("ours", "decoded", "naive", "reconstruction", "truth_round_trip"):
                    record(f"psnr_truth_{k}", psnr(out["truth"][j], out[k][j]))
                replayed = out["replayed"][j].astype(int)  # the source prompts' steps run again
                record("reconstruction_equal", float(np.array_equal(replayed, out["round_trip"][j])))
                record("reconstruction_max_diff", int(np.abs(replayed - out["round_trip"][j]).max()))
                record("changed_area", float(changed.mean()))
                if out["lesion"] and out["lesion"][j].any():
                    record("lesion_psnr", psnr(out["source"][j], out["ours"][j], ~out["lesion"][j]))
                    record("lesion_psnr_truth", psnr(out["source"][j], out["truth"][j], ~out["lesion"][j]))
            values.setdefault("latent_error", []).extend(out["latent_error"].tolist())
        p = {k: np.concatenate(v) for k, v in probs.items()}
        lands = lambda k: float(((p[k][:, target] >= 0.5) == add).mean())  # noqa: E731
        no_flip = lambda k: metrics.no_non_target_flip_rate(p["reconstruction"], p[k], target)  # noqa: E731
        mean = lambda key: float(np.mean(values[key])) if values.get(key) else None  # noqa: E731
        lesion = np.array(values.get("lesion_psnr", []))
        flipped = metrics.non_target_flips(p["reconstruction"], p["ours"], target)[:, 0]  # [seeds]
        lesion_mean = lambda chosen: (float(lesion[chosen].mean())  # noqa: E731
                                      if len(lesion) == len(chosen) and chosen.any() else None)
        return {
            "modality": modality, "attribute": attribute, "direction": direction, "seeds": len(seeds),
            "first_seed": seeds[0], "edit_lands": lands("ours"), "decoded_edit_lands": lands("decoded"),
            "naive_edit_lands": lands("naive"),
            "truth_lands": lands("truth"), "source_lands": lands("source"),
            "no_non_target_flip": no_flip("ours"), "decoded_no_non_target_flip": no_flip("decoded"),
            "naive_no_non_target_flip": no_flip("naive"),
            "truth_no_non_target_flip": metrics.no_non_target_flip_rate(p["source"], p["truth"], target),
            "flips_by_attribute": metrics.flips_by_attribute(p["reconstruction"], p["ours"], target, names),
            "psnr_outside_vs_source": mean("psnr_outside_ours"),
            "decoded_psnr_outside_vs_source": mean("psnr_outside_decoded"),
            "naive_psnr_outside_vs_source": mean("psnr_outside_naive"),
            "round_trip_psnr_outside_vs_source": mean("psnr_outside_round_trip"),
            "psnr_outside_vs_reconstruction": mean("psnr_outside_spill"),  # the edit's own spill
            "psnr_outside_truth_and_edit_vs_source": mean("psnr_outside_both"),
            "psnr_vs_truth": mean("psnr_truth_ours"), "decoded_psnr_vs_truth": mean("psnr_truth_decoded"),
            "naive_psnr_vs_truth": mean("psnr_truth_naive"),
            "unedited_psnr_vs_truth": mean("psnr_truth_reconstruction"),
            "round_trip_psnr_vs_truth": mean("psnr_truth_truth_round_trip"),
            "reconstruction_equals_round_trip": mean("reconstruction_equal"),
            "reconstruction_max_diff": int(max(values["reconstruction_max_diff"])),
            "latent_error_max": float(max(values["latent_error"])),
            "changed_area": mean("changed_area"), "edit_footprint_area": mean("footprint_area"),
            "lesion_psnr_vs_source": mean("lesion_psnr"), "lesion_psnr_vs_source_flipped": lesion_mean(flipped),
            "lesion_psnr_vs_source_no_flip": lesion_mean(~flipped),
            "truth_lesion_psnr_vs_source": mean("lesion_psnr_truth"),
        }


SUMMARY_KEYS = ("edit_lands", "decoded_edit_lands", "naive_edit_lands", "truth_lands", "no_non_target_flip",
                "decoded_no_non_target_flip", "naive_no_non_target_flip", "truth_no_non_target_flip",
                "psnr_outside_vs_source", "decoded_psnr_outside_vs_source", "naive_psnr_outside_vs_source",
                "round_trip_psnr_outside_vs_source", "psnr_outside_vs_reconstruction",
                "psnr_outside_truth_and_edit_vs_source", "psnr_vs_truth",
                "decoded_psnr_vs_truth", "naive_psnr_vs_truth", "unedited_psnr_vs_truth", "round_trip_psnr_vs_truth",
                "reconstruction_equals_round_trip")


def summarize(rows: list[dict]) -> dict:
    summary = {}
    for direction in DIRECTIONS:
        chosen = [r for r in rows if r["direction"] == direction]
        if chosen:
            summary[direction] = {k: float(np.mean([r[k] for r in chosen if r[k] is not None])) for k in SUMMARY_KEYS}
    summary["reconstruction_max_diff"] = max(r["reconstruction_max_diff"] for r in rows)
    summary["latent_error_max"] = max(r["latent_error_max"] for r in rows)
    return summary


def evaluate_uploads(model: LoadedModel, seeds: int = DEFAULT_SEEDS, modalities=("dermoscopy", "cxr"),
                     attributes=None, directions=DIRECTIONS, seed_range: str = DEFAULT_RANGE, steps=None,
                     swap_at=None, locality=None, anatomy_scale=None, style_scale=None, batch: int = BATCH,
                     edit: str = "prompts", refresh: float = 0.0, progress: bool = True) -> dict:
    """The report: one row per attribute and direction, `seeds` uploads each."""
    directions = checked_directions(directions)
    jobs = [(m, a, d) for m, a in evaluation_jobs(modalities, attributes) for d in directions]
    evaluator = UploadEvaluator(model, steps, anatomy_scale, style_scale, swap_at, locality, batch, edit, refresh)
    began, rows = time.perf_counter(), []
    for modality, attribute, direction in tqdm(jobs, desc="upload edits", disable=not progress):
        block = row_seeds(seed_range, attribute, SEED_BLOCKS * seeds)
        chosen = block[:seeds] if direction == "add" else block[seeds:]
        rows.append(evaluator.row(modality, attribute, direction, chosen))
    return {"model_id": model.model_id, "model_revision": model.revision, "image_size": model.image_size,
            "steps": evaluator.steps,
            "scales": evaluator.scales, "swap_at": evaluator.swap_at, "locality": evaluator.locality, "edit": edit,
            "refresh": evaluator.refresh,
            "seeds_per_row": seeds, "seed_range": seed_range, "inversion": "edit-friendly, DPM-Solver++ 2M",
            "seconds": round(time.perf_counter() - began, 1), "rows": rows, "summary": summarize(rows)}


def bench_uploads(model: LoadedModel, repeats: int = 3, source_size: int | None = None) -> dict:
    """Seconds from an uploaded PNG's bytes to its first edit (fresh caches: read, fit, invert,
    edit, decode both), and for a slider re-edit from the cached inversion. The PNG is larger than
    the model's images, so fitting it is timed too: 4x their side (256 px for a 64-px model), 512 at most."""
    source_size = source_size or min(SIZE_RANGE[1], 4 * model.info.image_size)
    source = render("dermoscopy", {**sample_factors("dermoscopy", 7), "hair": False}, 7, source_size)
    buffer = io.BytesIO()
    Image.fromarray(source.image).save(buffer, format="PNG")
    data = buffer.getvalue()
    defaults = model.info.defaults
    s = Sampling.with_defaults(defaults, source.anatomy, source.style, 0)

    def first_edit():
        pipeline = MedEditPipeline(model)
        began = time.perf_counter()
        pipeline.edit_image(read_image(data).pixels, s, Edit.with_defaults(defaults, sliders={"hair": 1.0}))
        return pipeline, time.perf_counter() - began

    first_edit()  # warm-up: first calls allocate
    firsts = [first_edit() for _ in range(repeats)]
    pipeline = firsts[-1][0]
    image = read_image(data).pixels
    reedits = []
    for scale in (0.5, 1.0, -0.5, -1.0):  # within the shipped model's hair range (-1..1)
        began = time.perf_counter()
        pipeline.edit_image(image, s, Edit.with_defaults(defaults, sliders={"hair": scale}))
        reedits.append(time.perf_counter() - began)
    return {"upload_to_first_edit_s": statistics.median(t for _, t in firsts),
            "reedit_s": statistics.median(reedits), "source_size": source_size, "steps": s.steps,
            "swap_at": defaults["swap_at"], "locality": defaults["locality"], "threads": torch.get_num_threads()}
