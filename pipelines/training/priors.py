"""Visual priors for the alignment loss: what each conditioning channel should carry."""

import torch

from pipelines.data.attributes import ATTRIBUTES, MODALITIES


def visual_priors(labels: torch.Tensor, modality: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel prior vectors: that channel's attribute labels plus the modality one-hot.

    On phantoms these are exact image factors, the analogue of VG-MedGen's SDNet anatomy map and
    modality vector; the alignment loss pulls each projection branch toward its own.
    """
    one_hot = torch.tensor([[float(m == name) for name in MODALITIES] for m in modality])
    anatomy_cols = [i for i, a in enumerate(ATTRIBUTES) if a.channel == "anatomy"]
    style_cols = [i for i, a in enumerate(ATTRIBUTES) if a.channel == "style"]
    return (torch.cat([labels[:, anatomy_cols], one_hot], 1),
            torch.cat([labels[:, style_cols], one_hot], 1))


PRIOR_DIMS = (sum(a.channel == "anatomy" for a in ATTRIBUTES) + len(MODALITIES),
              sum(a.channel == "style" for a in ATTRIBUTES) + len(MODALITIES))
