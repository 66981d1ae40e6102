"""Phantom training sets held in memory: images at the model's size, captions, labels, priors.

Rendering is deterministic by seed, so a set is fully described by (modalities, n, seed, size) and
a run that resumes rebuilds exactly the same data.
"""

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

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


def render_one(job: tuple) -> tuple:
    """One phantom at the model's size, with its captions, labels and detail coverage."""
    m, seed, size, detail_masks = job
    p = phantom(m, seed, size=max(size, RENDER_SIZE))
    detail = coverage(p.masks, detail_masks, size) if detail_masks else None
    return (to_model_size(p.image, size), p.anatomy, p.style, m,
            [float(p.labels.get(a.name, 0)) for a in ATTRIBUTES], detail)


def build_phantom_set(n: int, seed: int, size: int, modalities=MODALITIES,
                      progress: bool = True, detail_masks: tuple[str, ...] = (),
                      workers: int | None = None) -> PhantomSet:
    """n phantoms alternating over the modalities; sample i uses seed `seed + i`. With
    `detail_masks`, also the coverage of those attributes' masks (see PhantomSet.detail).
    Rendered in `workers` processes (default: one per core, none for small sets); the set does
    not depend on how many."""
    jobs = [(modalities[i % len(modalities)], seed + i, size, tuple(detail_masks)) for i in range(n)]
    workers = workers or min(os.cpu_count() or 1, n // 256)
    bar = dict(total=n, desc="rendering phantoms", disable=not progress)
    if workers > 1:
        # spawn, not fork: the parent may already run torch threads, which fork does not copy safely.
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            rendered = list(tqdm(pool.map(render_one, jobs, chunksize=64), **bar))
    else:
        rendered = [render_one(job) for job in tqdm(jobs, **bar)]
    images, anatomy, style, modality, labels, detail = zip(*rendered)
    images = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    detail = torch.from_numpy(np.stack(detail))[:, None] if detail_masks else None
    return PhantomSet(images, list(anatomy), list(style), list(modality), torch.tensor(labels), detail)


def to_unit_range(images_uint8: torch.Tensor) -> torch.Tensor:
    return images_uint8.float() / 127.5 - 1.0
