"""Does "did the edit land" say what the evaluator would? Edits on reporting seeds, both verdicts.

For every attribute, direction (adding it, removing it) and kind of edit, n seeds of the reporting
range (adding: a row's first n seeds, removing: the next n) are edited as a user would, through the
pipeline, and the landing note is added as the app, the API and the command line add it
(landing.add_landing). The same edit is then judged as the evaluator judges one, from what it
knows by construction rather than from the settings the note reads:
  - the target: the attribute the counterfactual toggles (the evaluator's row), in its direction;
    it lands when the classifier reads it as asked in the result (p >= 0.5 present) and read it
    otherwise in the source (an attribute asked for that the source already shows is no edit);
  - unasked changes: every other attribute of the modality whose thresholded label differs between
    the source and the result (the evaluator's non-target flips). For an uploaded image the source
    is the upload as given, what the user compares the result with (`eval --uploads` counts
    against the autoencoder's round trip instead, to set the autoencoder's share apart).
The note agrees on an edit when it names the same verdict for the target (landed or not) and the
same set of unasked changes. Kinds:
  - typed: the counterfactual's captions as the edited prompts (as `eval` edits a generated image);
  - slider: the attribute's slider at +1 or -1 on the source prompts;
  - upload: the phantom rendered without (adding) or with (removing) the attribute, drawn at
    render_size (phantom_size.py, as training draws them), read through the upload path, inverted
    and edited by the counterfactual's captions (as `eval --uploads`).
"""

from __future__ import annotations

import time

import numpy as np

from pipelines.data.attributes import MODALITIES, attributes_of
from pipelines.data.phantom_size import render_size
from pipelines.data.phantoms import render
from pipelines.editing.requests import Edit, Sampling
from pipelines.evaluation.classifier import OUTPUTS, model_classifier, predict_probs
from pipelines.evaluation.evaluator import prompts_for
from pipelines.evaluation.landing import PRESENT, add_landing
from pipelines.evaluation.plan import evaluation_jobs, row_seeds

KINDS = ("typed", "slider", "upload")
DIRECTIONS = ("add", "remove")
TARGET = 0.95  # the issue's: the note agrees with the evaluator on at least this share of edits


def request(pipeline, kind: str, name: str, add: bool, prompts, seed: int):
    """(Sampling, Edit) of one edit: the source prompts, and the counterfactual's or the slider."""
    defaults = pipeline.model.info.defaults
    (_, off, on) = prompts
    source, target = (off, on) if add else (on, off)
    s = Sampling.with_defaults(defaults, *source, seed=seed)
    if kind == "slider":
        return s, Edit.with_defaults(defaults, sliders={name: 1.0 if add else -1.0})
    return s, Edit.with_defaults(defaults, to_anatomy=target[0], to_style=target[1])


def evaluator_verdict(classifier, modality: str, name: str, add: bool, source, result) -> dict:
    """The evaluator's judgement of one edit: {"landed": bool, "changed": sorted names}."""
    names = [a.name for a in attributes_of(modality)]
    columns = [OUTPUTS.index(n) for n in names]
    p = predict_probs(classifier, [source, result])[:, columns]
    target = names.index(name)
    before, after = p[0, target] >= PRESENT, p[1, target] >= PRESENT
    flipped = [n for j, n in enumerate(names) if j != target and (p[0, j] >= PRESENT) != (p[1, j] >= PRESENT)]
    return {"landed": bool(after == add and before != add), "changed": sorted(flipped)}


def note_verdict(landing: dict, name: str) -> dict:
    """What the landing note said of the same edit: the target's verdict (not asked: not landed)
    and the attributes it reported as changed unasked."""
    asked = landing["asked"].get(name)
    return {"landed": bool(asked and asked["landed"]), "asked": sorted(landing["asked"]),
            "changed": sorted(landing["changed"])}


def one_edit(pipeline, classifier, kind: str, modality: str, name: str, add: bool, seed: int) -> dict:
    prompts = prompts_for(modality, name, seed)
    s, e = request(pipeline, kind, name, add, prompts, seed)
    if kind == "upload":
        factors = {**prompts[0], name: not add}
        # drawn as training and `eval --uploads` draw phantoms (128 px at least), fitted down by the
        # upload path: drawn at a 64-px model's own size, thin strokes alias and the domain check
        # can refuse the upload (a chest X-ray at 1.93 against 1.74)
        image = render(modality, factors, seed, render_size(pipeline.model.info.image_size)).image
        result = pipeline.edit_image(image, s, e)  # result.neutral: the upload at the model's size
    else:
        result = pipeline.edit(s, e)
    add_landing(result, pipeline.model, classifier)
    note = note_verdict(result.settings["landing"], name)
    judged = evaluator_verdict(classifier, modality, name, add, result.neutral, result.edited)
    agrees = note["landed"] == judged["landed"] and note["changed"] == judged["changed"]
    return {"kind": kind, "attribute": name, "direction": "add" if add else "remove", "seed": seed,
            "note": note, "evaluator": judged, "agrees": agrees,
            "target_agrees": note["landed"] == judged["landed"],
            "changes_agree": note["changed"] == judged["changed"]}


def share(rows: list[dict], key: str) -> float | None:
    return float(np.mean([r[key] for r in rows])) if rows else None


def measure(pipeline, seeds: int, seed_range: str = "reporting", kinds=KINDS, modalities=None,
            attributes=None, progress=None) -> dict:
    """Every edit's two verdicts and the agreement, overall, by kind and by attribute."""
    began, classifier = time.perf_counter(), model_classifier(pipeline.model.domain_folder)
    jobs = evaluation_jobs(tuple(modalities or MODALITIES), attributes)
    known = {a["name"] for a in pipeline.model.info.attributes}
    rows = []
    for modality, name in jobs:
        if name not in known:
            continue
        block = row_seeds(seed_range, name, 2 * seeds)
        for kind in kinds:
            for add, chosen in ((True, block[:seeds]), (False, block[seeds:])):
                for seed in chosen:
                    rows.append(one_edit(pipeline, classifier, kind, modality, name, add, seed))
        if progress:
            progress(name, time.perf_counter() - began)
    by = lambda key: {v: share([r for r in rows if r[key] == v], "agrees")  # noqa: E731
                      for v in dict.fromkeys(r[key] for r in rows)}
    disagreements = [r for r in rows if not r["agrees"]]
    return {"seed_range": seed_range, "seeds_per_row": seeds, "kinds": list(kinds), "edits": len(rows),
            "agreement": share(rows, "agrees"), "target": TARGET,
            "target_agreement": share(rows, "target_agrees"), "changes_agreement": share(rows, "changes_agree"),
            "evaluator_landed": share([{"x": r["evaluator"]["landed"]} for r in rows], "x"),
            "by_kind": by("kind"), "by_attribute": by("attribute"), "by_direction": by("direction"),
            "disagreements": disagreements, "seconds": round(time.perf_counter() - began, 1)}
