"""How well an autoencoder keeps what the evaluator reads, on phantoms no trainer used.

Per modality: the PSNR of the round trip (encode to the latent mean, decode), and the attribute
classifier's accuracy on the round trips beside its accuracy on the originals: a VAE that blurs a
thin mark away loses the attribute even when its PSNR looks fine (the 256-px model's targets are
>= 32 dB and an accuracy within 0.01 of the originals').
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from pipelines.data.attributes import MODALITIES, attributes_of
from pipelines.data.phantom_size import render_size
from pipelines.data.phantoms import phantom
from pipelines.evaluation.classifier import OUTPUTS, predict_probs
from pipelines.evaluation.metrics import psnr_outside

HELD_OUT_SEED = 30_000_000  # above every trainer's seeds (classifier evaluation starts at 10M)
BATCH = 16


def held_out_phantoms(modality: str, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """n phantoms of `modality` at `size` (uint8 [n, S, S, 3]) and their 0/1 labels [n, A] over the
    modality's attributes."""
    # Rendered as the trainers render them: at 128 px or more, box-filtered down to `size`.
    rendered = [phantom(modality, HELD_OUT_SEED + i, size=render_size(size)) for i in range(n)]
    labels = [[p.labels[a.name] for a in attributes_of(modality)] for p in rendered]
    images = [np.asarray(Image.fromarray(p.image).resize((size, size), Image.Resampling.BOX)) for p in rendered]
    return np.stack(images), np.array(labels)


@torch.no_grad()
def round_trip(vae, images: np.ndarray) -> np.ndarray:
    """uint8 [N, S, S, 3] through the VAE's latent mean and back, as uint8."""
    out = []
    for start in range(0, len(images), BATCH):
        x = torch.from_numpy(images[start:start + BATCH]).permute(0, 3, 1, 2).float() / 127.5 - 1
        y = vae.decode(vae.encode(x.to(vae.device, vae.dtype)).latent_dist.mean).sample
        out.append(((y.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out)


def attribute_accuracy(classifier, images: np.ndarray, labels: np.ndarray, modality: str) -> float:
    """Share of (image, attribute) pairs the classifier reads right at 0.5."""
    columns = [OUTPUTS.index(a.name) for a in attributes_of(modality)]
    found = predict_probs(classifier, images)[:, columns] > 0.5
    return float((found == labels.astype(bool)).mean())


def reconstruction_report(vae, size: int, n: int = 64, classifier=None) -> dict:
    """{modality: {"psnr", "psnr_min", and with a classifier "accuracy_original",
    "accuracy_reconstructed"}} over n held-out phantoms per modality."""
    report = {}
    for modality in MODALITIES:
        images, labels = held_out_phantoms(modality, n, size)
        rebuilt = round_trip(vae, images)
        scores = [psnr_outside(a, b) for a, b in zip(images, rebuilt)]
        row = {"psnr": float(np.mean(scores)), "psnr_min": float(np.min(scores)), "n": n}
        if classifier is not None:
            row["accuracy_original"] = attribute_accuracy(classifier, images, labels, modality)
            row["accuracy_reconstructed"] = attribute_accuracy(classifier, rebuilt, labels, modality)
        report[modality] = row
    return report
