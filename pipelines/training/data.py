"""Phantom training sets held in memory: images at the model's size, captions, labels, priors.

Rendering is deterministic by seed, so a set is fully described by (modalities, n, seed, size) and
a run that resumes rebuilds exactly the same data.

With `partners`, each phantom also gets a counterfactual partner: the same seed re-rendered with one
of its modality's attributes toggled (chosen by the seed), which the renderer guarantees changes
only that attribute's region. The set keeps the partner's captions and that region, not its image:
the DiT trainer asks the model to keep what lies outside the region under the partner's captions
(`train dit --pair-weight`).

With `lesion_free` p, a share p of the dermoscopy phantoms (chosen by seed) shows bare skin with no
lesion: the negatives of the classifier's "lesion" output. The default 0 keeps every lesion, as the
DiT's data have always had.
"""

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from pipelines.data.attributes import ATTRIBUTES, MODALITIES, attributes_of
from pipelines.data.phantoms import CHANGE_REGION, phantom, render
from pipelines.data.phantoms.drawing import unit_hash

RENDER_SIZE = 128  # rendered larger, then box-filtered down: thin strokes stay anti-aliased


@dataclass
class PhantomSet:
    images: torch.Tensor  # [N, 3, S, S] uint8
    anatomy: list[str]
    style: list[str]
    modality: list[str]
    labels: torch.Tensor  # [N, A] float 0/1 over the whole registry (0 where not applicable)
    detail: torch.Tensor | None = None  # [N, 1, S, S] uint8 coverage of the asked-for masks
    partner_anatomy: list[str] | None = None  # the counterfactual partner's captions
    partner_style: list[str] | None = None
    partner_change: torch.Tensor | None = None  # [N, 1, S, S] uint8 coverage of what the toggle changes
    objects: torch.Tensor | None = None  # [N, 1, S, S] uint8 coverage of what the phantom shows
    lesion: torch.Tensor | None = None  # [N] float 0/1: a dermoscopy phantom that shows a lesion

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


def toggled_attribute(modality: str, seed: int) -> str:
    """The attribute a phantom's counterfactual partner toggles: uniform over the modality's, by seed."""
    names = [a.name for a in attributes_of(modality)]
    return names[np.random.default_rng([seed, 17]).integers(len(names))]


def render_partner(p, size: int) -> tuple:
    """(anatomy, style, change, objects) of p re-rendered with one attribute toggled: its captions,
    the coverage at `size` of the region the toggle changes, and of every object p shows (the
    lesion or heart and each attribute that is on), which an edit of another attribute must keep."""
    name = toggled_attribute(p.modality, p.seed)
    q = render(p.modality, {**p.factors, name: not p.factors[name]}, p.seed, size=p.image.shape[0])
    region = CHANGE_REGION.get(name, name)
    change = (p.masks[region] | q.masks[region]).astype(np.uint8) * 255
    return q.anatomy, q.style, to_model_size(change, size), coverage(p.masks, p.masks, size)


def lesion_free_seed(seed: int, share: float) -> bool:
    """Whether a dermoscopy phantom of a set with `share` lesion-free ones shows bare skin."""
    return share > 0 and unit_hash(seed, "lesion_free") < share


def render_one(job: tuple) -> tuple:
    """One phantom at the model's size, with its captions, labels, detail coverage, partner and
    whether it shows a lesion."""
    m, seed, size, detail_masks, partners, render_size, lesion_free = job
    bare = m == "dermoscopy" and lesion_free_seed(seed, lesion_free)
    p = phantom(m, seed, size=render_size or max(size, RENDER_SIZE), **({"lesion": False} if bare else {}))
    detail = coverage(p.masks, detail_masks, size) if detail_masks else None
    partner = render_partner(p, size) if partners else None
    return (to_model_size(p.image, size), p.anatomy, p.style, m,
            [float(p.labels.get(a.name, 0)) for a in ATTRIBUTES], detail, partner,
            float(bool(p.factors.get("lesion", False))))


def build_phantom_set(n: int, seed: int, size: int, modalities=MODALITIES,
                      progress: bool = True, detail_masks: tuple[str, ...] = (),
                      workers: int | None = None, partners: bool = False, render_size: int | None = None,
                      lesion_free: float = 0.0) -> PhantomSet:
    """n phantoms alternating over the modalities; sample i uses seed `seed + i`, rendered at
    `render_size` (default the larger of `size` and 128) and box-filtered to `size`. With
    `detail_masks`, also the coverage of those attributes' masks (see PhantomSet.detail); with
    `partners`, each one's counterfactual partner; with `lesion_free`, that share of dermoscopy
    phantoms without a lesion (module docstring). Rendered in `workers` processes (default: one per
    core, none for small sets); the set does not depend on how many."""
    jobs = [(modalities[i % len(modalities)], seed + i, size, tuple(detail_masks), partners, render_size,
             lesion_free) for i in range(n)]
    workers = workers or min(os.cpu_count() or 1, n // 256)
    bar = dict(total=n, desc="rendering phantoms", disable=not progress)
    if workers > 1:
        # spawn, not fork: the parent may already run torch threads, which fork does not copy safely.
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            rendered = list(tqdm(pool.map(render_one, jobs, chunksize=64), **bar))
    else:
        rendered = [render_one(job) for job in tqdm(jobs, **bar)]
    images, anatomy, style, modality, labels, detail, partner, lesion = zip(*rendered)
    images = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    detail = torch.from_numpy(np.stack(detail))[:, None] if detail_masks else None
    data = PhantomSet(images, list(anatomy), list(style), list(modality), torch.tensor(labels), detail,
                      lesion=torch.tensor(lesion))
    if partners:
        p_anatomy, p_style, change, objects = zip(*partner)
        data.partner_anatomy, data.partner_style = list(p_anatomy), list(p_style)
        data.partner_change = torch.from_numpy(np.stack(change))[:, None]
        data.objects = torch.from_numpy(np.stack(objects))[:, None]
    return data


def to_unit_range(images_uint8: torch.Tensor) -> torch.Tensor:
    return images_uint8.float() / 127.5 - 1.0
