"""Where a domain check refuses: a limit chosen on the tuning split only.

    refuse, figures = refuse_limit(flag, far_scores, outside_scores, near_scores)

`flag` (domain_fit.py) sits just above nearly every held-out training image as uploads arrive.
`refuse` sits in the gap between two tuning sets, neither of which `eval --domain` measures on:
  - the far-shifted training images (domain_far.far_shifted): the same modality shifted further
    than the fit's own augmentation (contrast x0.3-0.6 or x1.5-2, gamma, a turn of 6-15 degrees,
    blur, a crop, a low-resolution source), as a real image of a known modality may differ from
    the phantoms. These are to be warned about, not refused: nearly all of them (WARNED_QUANTILE)
    lie below `refuse`. Set on the fit's own, milder shifts (domain_fit.shifted; 1.15 times their
    99th percentile) `refuse` was 1.74, and a chest X-ray phantom at contrast x0.55 scored 1.14
    (in the model's world), at x0.50 1.78 (refused): it skipped the warning band;
  - the tuning half of the out-of-domain images (domain_sets.out_of_domain(split="tuning"): pydicom's
    CT, MR, ultrasound ..., packaged photographs, noise, documents). All but the share the target
    lets pass (REFUSED_QUANTILE: >= 98% refused) lie above it.
`refuse` is the far-shifted images' quantile, capped at the out-of-domain one: out-of-domain files
unseen in tuning can score far below the tuning ones (a 12-image fit scored pydicom's CT slice 6.4
where the tuning files' 2nd percentile was 24, so the geometric middle of the two, 9.1, let it
through), and a CT slice refused matters more than a far-shifted phantom warned. Never below
`flag`. A small fit (fewer than MIN_FAR far-shifted images, e.g. a 12-image dataset of one's own)
cannot measure a 95th percentile, and its few far shifts score as far as a CT slice (a 12-image fit:
far-shifted 95th percentile 8.9, pydicom's CT 4.5): it keeps the narrow band of the fit's own milder
shifts, NEAR_MARGIN times their 99th percentile (`refuse` 1.74 for the shipped fit before the far
shifts). `eval --domain` then reports on the held-out half, on fresh phantoms and on fresh far
shifts (its known-modality row).
"""

from __future__ import annotations

import numpy as np

WARNED_QUANTILE = 0.95  # of the far-shifted training images: below `refuse` (warned, not refused)
REFUSED_QUANTILE = 0.02  # of the tuning out-of-domain images: below `refuse` at most (the target's 98%)
MIN_FAR = 100  # far-shifted images needed to trust their quantile; fewer: the milder shifts' rule
NEAR_QUANTILE, NEAR_MARGIN = 0.99, 1.15  # that rule: just above nearly all of the milder shifts


def refuse_limit(flag: float, far: np.ndarray, outside: np.ndarray, near: np.ndarray) -> tuple[float, dict]:
    """The refusal limit and the tuning figures it was chosen on. near: the milder shifts' scores."""
    far, outside = np.asarray(far), np.asarray(outside)
    small = len(far) < MIN_FAR
    warned = (float(np.quantile(near, NEAR_QUANTILE)) * NEAR_MARGIN if small
              else float(np.quantile(far, WARNED_QUANTILE)))
    refused = float(np.quantile(outside, REFUSED_QUANTILE))
    gap = warned < refused
    refuse = max(flag, min(warned, refused))
    figures = {"rule": ("a small fit: the milder shifts' quantile times near_margin" if small else
                        "the far-shifted training images' quantile") +
                       ", at most the tuning out-of-domain images' quantile, at least flag",
               "warned_quantile": WARNED_QUANTILE, "refused_quantile": REFUSED_QUANTILE,
               "warned_side_score": warned, "outside_quantile_score": refused, "gap": gap,
               "tuning_outside_images": int(len(outside)),
               "tuning_outside_refused": float((outside > refuse).mean()),
               "far_images": int(len(far)),
               "far_flagged": float((far > flag).mean()),
               "far_refused": float((far > refuse).mean())}
    return refuse, figures
