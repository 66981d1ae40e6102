"""Phantom training sets held in memory: images at the model's size, captions, labels, priors.

Rendering is deterministic by seed, so a set is fully described by (modalities, n, seed, size) and
a run that resumes rebuilds exactly the same data.
"""

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from pipelines.attributes import ATTRIBUTES, MODALITIES
from pipelines.phantoms import phantom

RENDER_SIZE = 128  # rendered larger, then box-filtered down: thin strokes stay anti-aliased


@dataclass
class PhantomSet:
    images: torch.Tensor  # [N, 3, S, S] uint8
    anatomy: list[str]
    style: list[str]
    modality: list[str]
    labels: torch.Tensor  # [N, A] float 0/1 over the whole registry (0 where not applicable)
    detail: torch.Tensor | None = None  # [N, 1, S, S] uint8 coverage of the asked-for masks

    def __len__(self):
        return len(self.anatomy)


def to_model_size(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[0] == size:
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BOX))


def coverage(masks: dict, names, size: int) -> np.ndarray:
    """The union of the named masks as uint8 coverage at `size` (box-filtered like the image)."""
    union = np.zeros(next(iter(masks.values())).shape, np.uint8)
    for name in names:
        if name in masks:
            union |= masks[name].astype(np.uint8)
    return to_model_size(union * 255, size)


def build_phantom_set(n: int, seed: int, size: int, modalities=MODALITIES,
                      progress: bool = True, detail_masks: tuple[str, ...] = ()) -> PhantomSet:
    """n phantoms alternating over the modalities; sample i uses seed `seed + i`. With
    `detail_masks`, also the coverage of those attributes' masks (see PhantomSet.detail)."""
    images, anatomy, style, modality, labels, detail = [], [], [], [], [], []
    for i in tqdm(range(n), desc="rendering phantoms", disable=not progress):
        m = modalities[i % len(modalities)]
        p = phantom(m, seed + i, size=max(size, RENDER_SIZE))
        images.append(to_model_size(p.image, size))
        anatomy.append(p.anatomy)
        style.append(p.style)
        modality.append(m)
        labels.append([float(p.labels.get(a.name, 0)) for a in ATTRIBUTES])
        if detail_masks:
            detail.append(coverage(p.masks, detail_masks, size))
    images = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    detail = torch.from_numpy(np.stack(detail))[:, None] if detail_masks else None
    return PhantomSet(images, anatomy, style, modality, torch.tensor(labels), detail)


def to_unit_range(images_uint8: torch.Tensor) -> torch.Tensor:
    return images_uint8.float() / 127.5 - 1.0
