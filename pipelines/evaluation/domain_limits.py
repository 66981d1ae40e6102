"""Where a domain check refuses: a limit chosen on the tuning split only.

    refuse, figures = refuse_limit(flag, shifted_scores, outside_scores)

`flag` (domain_fit.py) sits just above nearly every held-out training image as uploads arrive.
`refuse` sits in the gap between two tuning sets, neither of which `eval --domain` measures on:
  - the shifted training images: the same modality as another scanner or viewer shows it (contrast,
    brightness, gamma, blur, noise, a slight zoom or turn: domain_fit.shifted). These should be
    warned about, not refused: nearly all of them (WARNED_QUANTILE) lie below `refuse`;
  - the tuning half of the out-of-domain images (domain_sets.out_of_domain(split="tuning"): pydicom's
    CT, MR, ultrasound ..., packaged photographs, noise, documents). All but the share the target
    lets pass (REFUSED_QUANTILE: >= 98% refused) lie above it.
`refuse` sits just above the shifted training images' quantile (by WARNED_MARGIN, the margin `flag`
has over its own quantile), capped at the out-of-domain one: out-of-domain files unseen in tuning
can score far below the tuning ones (a 12-image fit scored pydicom's CT slice 6.4 where the tuning
files' 2nd percentile was 24, so the geometric middle of the two, 9.1, let it through), and a CT
slice refused matters more than a turned phantom warned. Never below `flag`. `eval --domain` then
reports on the held-out half and on fresh phantoms.
"""

from __future__ import annotations

import numpy as np

WARNED_QUANTILE = 0.99  # of the shifted training images: below `refuse` (warned, not refused)
REFUSED_QUANTILE = 0.02  # of the tuning out-of-domain images: below `refuse` at most (the target's 98%)
WARNED_MARGIN = 1.15  # refuse's room above the shifted images' quantile (domain_fit's flag margin)


def refuse_limit(flag: float, shifted: np.ndarray, outside: np.ndarray) -> tuple[float, dict]:
    """The refusal limit and the tuning figures it was chosen on."""
    warned = float(np.quantile(shifted, WARNED_QUANTILE))
    refused = float(np.quantile(outside, REFUSED_QUANTILE))
    gap = warned < refused
    refuse = max(flag, min(warned * WARNED_MARGIN, refused))
    figures = {"rule": "the shifted training images' quantile times warned_margin, at most the tuning "
                       "out-of-domain images' quantile, at least flag",
               "warned_quantile": WARNED_QUANTILE, "refused_quantile": REFUSED_QUANTILE,
               "warned_margin": WARNED_MARGIN,
               "shifted_quantile_score": warned, "outside_quantile_score": refused, "gap": gap,
               "tuning_outside_images": int(len(outside)),
               "tuning_outside_refused": float((np.asarray(outside) > refuse).mean()),
               "shifted_refused": float((np.asarray(shifted) > refuse).mean())}
    return refuse, figures
