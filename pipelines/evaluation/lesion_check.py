"""Does a generated dermoscopy image show a lesion? Every dermoscopy prompt names one, yet a model
can draw bare skin (the README's own nevus prompt did at one seed), and no attribute says so: the
melanoma output reads a nevus into skin with nothing on it. The classifier's `lesion` output
(trained on phantoms drawn with no lesion) answers; a classifier without it leaves the check
"not checked", never passed.

    record, notes = lesion_landing(before, after, settings)   # after one edit (landing.py)
    tally = LesionTally()
    tally.add("neutral", seeds, probabilities)    # lesion probabilities of the images, per seed
    tally.row()                                   # {"with_lesion": ..., "no_lesion_seeds": ...}
    summary = lesion_summary(rows)                # over every dermoscopy row of a report
"""

from __future__ import annotations

import numpy as np

from pipelines.evaluation.classifier import lesion_column

PRESENT = 0.5  # the evaluator's threshold
TARGET = 0.99  # dermoscopy images with a lesion (issue 33)
NOT_CHECKED = ("not checked: this classifier has no lesion output (train one: `python -m pipelines "
               "train classifier --lesion-free 0.2`, or add it to a trained one with --init FOLDER "
               "--only-lesion)")


class LesionTally:
    """One evaluation row's images by kind ("neutral", "edited", "phantom"): how many show a
    lesion, and the seeds of those that do not."""

    def __init__(self):
        self.kinds: dict[str, dict] = {}

    def add(self, kind: str, seeds, probabilities: np.ndarray | None) -> None:
        if probabilities is None:
            return
        counts = self.kinds.setdefault(kind, {"images": 0, "with_lesion": 0, "no_lesion_seeds": []})
        shown = np.asarray(probabilities) >= PRESENT
        counts["images"] += len(shown)
        counts["with_lesion"] += int(shown.sum())
        counts["no_lesion_seeds"] += [int(s) for s, on in zip(seeds, shown) if not on]

    def row(self) -> dict | None:
        """{kind: {"images", "lesion_images", "with_lesion" (their share), "no_lesion_seeds"}}, or
        None when nothing was judged."""
        if not self.kinds:
            return None
        return {kind: {"images": c["images"], "lesion_images": c["with_lesion"],
                       "with_lesion": c["with_lesion"] / c["images"], "no_lesion_seeds": c["no_lesion_seeds"]}
                for kind, c in self.kinds.items()}


def lesion_summary(rows: list[dict]) -> dict:
    """The report's "dermoscopy images with a lesion": generated images (neutral and edited) of
    every dermoscopy row pooled, the target, and the renderer's own phantoms as the check's ceiling."""
    judged = [r["lesion"] for r in rows if r["modality"] == "dermoscopy" and r.get("lesion")]
    if not judged:
        checked = any(r["modality"] == "dermoscopy" for r in rows)
        return {"with_lesion": None, "note": NOT_CHECKED if checked else "no dermoscopy rows evaluated"}
    images = lambda kinds: sum(row[k]["images"] for row in judged for k in kinds if k in row)  # noqa: E731
    shown = lambda kinds: sum(row[k]["lesion_images"] for row in judged for k in kinds if k in row)  # noqa: E731
    generated = ("neutral", "edited")
    total = images(generated)
    with_lesion = shown(generated) / total if total else None
    return {"with_lesion": with_lesion, "target": TARGET,
            "meets_target": None if with_lesion is None else with_lesion >= TARGET,
            "generated_images": total, "without_lesion": total - shown(generated),
            "phantom_with_lesion": shown(("phantom",)) / images(("phantom",)) if images(("phantom",)) else None}


def names_a_lesion(prompt: str) -> bool:
    """Whether a dermoscopy prompt asks for a lesion (the captioner's words for one), not bare skin."""
    text = prompt.lower()
    return "no lesion" not in text and any(w in text for w in ("lesion", "nevus", "naevus", "melanoma"))


def lesion_landing(before: np.ndarray, after: np.ndarray, settings: dict) -> tuple[dict | None, list[str]]:
    """For one dermoscopy edit (the classifier's rows for its source and result): the lesion
    probabilities, and a note when the prompts name a lesion and the result shows none. (None, [])
    for a classifier without the lesion output."""
    column = lesion_column(np.stack([before, after]))
    if column is None:
        return None, []
    p0, p1 = (float(p) for p in column)
    record = {"before": round(p0, 3), "after": round(p1, 3), "found": p1 >= PRESENT}
    asked = names_a_lesion(settings.get("to_anatomy") or settings["anatomy"])
    if p1 >= PRESENT or not asked:
        return record, []
    if p0 < PRESENT:
        where = "in the source image or the result"
        remedy = ("the image is bare skin" if settings.get("source") == "upload"
                  else "the model drew bare skin at this seed: try another seed")
    else:
        where = f"in the result (the source had one: {p0:.2f})"
        remedy = "a keep mask over the lesion or a higher 'Keep the rest' (locality) holds it"
    return record, [f"no lesion found {where} ({p1:.2f}), though the prompt names one: {remedy}"]
