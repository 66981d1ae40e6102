"""`eval --domain`: how well a model's domain check tells its world from everything else, on images
built at run time (domain_sets.py) that no statistic was fitted on.

    report = evaluate_domain(load_domain_check(source), n_in=600, n_near=160, n_generated=10)

Figures: AUROC of the score between in-domain uploads and out-of-domain files (the held-out half:
`refuse` was chosen on the other, domain_limits.py); at the shipped limits, the share of
out-of-domain files refused and of in-domain uploads flagged (warned or refused); the near-domain
hard cases' outcomes, and apart those a scanner or viewer could give (turned a few degrees,
contrast changed by a third: warned, not refused, is the aim); the known-modality row (fresh
phantoms shifted far, domain_sets.KNOWN_VARIANTS: most warned, not refused, is the target); each
kind's shares and score range; and how
often the classifier alone would have named a modality with confidence (>= 0.9) for an
out-of-domain image, which describe, judged by the check, never does for one it refuses.
Out-of-domain files whose pixels are identical once fitted (pydicom ships one image in several
transfer syntaxes) count once.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np

from pipelines.core.errors import MedEditError
from pipelines.data.uploads import fit_pixels
from pipelines.evaluation.classifier import OUTPUTS, predict_probs
from pipelines.evaluation.domain import DomainCheck
from pipelines.evaluation.domain_sets import KNOWN_VARIANTS, SHIFTED_VARIANTS, domain_sets

TARGETS = {"auroc": 0.99, "out_refused": 0.98, "in_flagged": 0.01,
           "known_refused": 0.2}  # at most: most of the far-shifted known-modality phantoms warned (or edited)
CONFIDENT = 0.9  # a modality named "90% sure"


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """The probability that a positive scores above a negative (ties count half)."""
    negatives, positives = np.asarray(negatives), np.asarray(positives)
    above = (positives[:, None] > negatives[None, :]).sum() + 0.5 * (positives[:, None] == negatives[None, :]).sum()
    return float(above / (len(positives) * len(negatives)))


def unique(cases: list, size: int) -> tuple[list, list]:
    """The cases with their pixels fitted to `size`, each image once."""
    seen, kept, fitted = set(), [], []
    for case in cases:
        pixels, _ = fit_pixels(case.pixels, size)
        digest = hashlib.sha256(pixels.tobytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            kept.append(case)
            fitted.append(pixels)
    return kept, fitted


def kind_of(name: str) -> str:
    """"dicom:CT:file" -> "dicom:CT"; "photo:gradio:x.jpg" -> "photo:gradio"; "noise:grey",
    "near:cxr:inverted" and "known:cxr:gamma_2" as they are."""
    return name if name.startswith(("near:", "known:")) else ":".join(name.split(":")[:2])


def evaluate_domain(check: DomainCheck, n_in: int, n_near: int, n_generated: int) -> dict:
    if check.stats is None:
        raise MedEditError(f"the domain check cannot be evaluated: {check.unchecked_reason}")
    size = check.classifier.config.input_size
    stats = check.stats
    scored = {}
    for group, cases in domain_sets(n_in, n_near, n_generated).items():
        if group == "out":
            cases, fitted = unique(cases, size)
        else:
            fitted = [fit_pixels(c.pixels, size)[0] for c in cases]
        scores, _ = check.scores(fitted)
        scored[group] = (cases, scores)
        if group == "out":
            p_cxr = predict_probs(check.classifier, fitted)[:, OUTPUTS.index("modality_cxr")]
            softmax_sure = float((np.maximum(p_cxr, 1 - p_cxr) >= CONFIDENT).mean())
    rate = lambda scores, limit: float((scores > limit).mean())  # noqa: E731
    ins, outs, near = scored["in"][1], scored["out"][1], scored["near"][1]
    report = {"flag": stats.flag, "refuse": stats.refuse, "images": {g: len(s) for g, (_, s) in scored.items()},
              "auroc_in_vs_out": auroc(ins, outs),
              "auroc_in_vs_near": auroc(ins, near),
              "out_refused": rate(outs, stats.refuse), "out_flagged": rate(outs, stats.flag),
              "in_flagged": rate(ins, stats.flag), "in_refused": rate(ins, stats.refuse),
              "near_flagged": rate(near, stats.flag), "near_refused": rate(near, stats.refuse),
              "out_classifier_alone_confident": softmax_sure,
              "targets": TARGETS, "kinds": {}}
    shifted = np.array([score for case, score in zip(*scored["near"]) if case.name.split(":")[-1] in SHIFTED_VARIANTS])
    report["out_split"] = "held_out"
    report["near_shifted"] = {"variants": list(SHIFTED_VARIANTS), "images": int(len(shifted)),
                              "flagged": rate(shifted, stats.flag) if len(shifted) else None,
                              "refused": rate(shifted, stats.refuse) if len(shifted) else None}
    known = scored["known"][1]
    report["known_modality"] = {"variants": list(KNOWN_VARIANTS), "images": int(len(known)),
                                "in_domain": float((known <= stats.flag).mean()),
                                "warned": float(((known > stats.flag) & (known <= stats.refuse)).mean()),
                                "refused": rate(known, stats.refuse)}
    report["targets_met"] = {"auroc": report["auroc_in_vs_out"] >= TARGETS["auroc"],
                             "out_refused": report["out_refused"] >= TARGETS["out_refused"],
                             "in_flagged": report["in_flagged"] <= TARGETS["in_flagged"],
                             "known_refused": report["known_modality"]["refused"] <= TARGETS["known_refused"]}
    for group, (cases, scores) in scored.items():
        by_kind = defaultdict(list)
        for case, score in zip(cases, scores):
            by_kind[kind_of(case.name)].append(score)
        for kind, values in sorted(by_kind.items()):
            values = np.asarray(values)
            report["kinds"][kind] = {"group": group, "images": len(values),
                                     "flagged": rate(values, stats.flag), "refused": rate(values, stats.refuse),
                                     "score_min": float(values.min()), "score_median": float(np.median(values)),
                                     "score_max": float(values.max())}
    missed = [(case.name, float(score)) for case, score in zip(*scored["out"]) if score <= stats.refuse]
    report["out_not_refused"] = [{"name": name, "score": score} for name, score in sorted(missed, key=lambda x: x[1])]
    return report
