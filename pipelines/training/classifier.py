"""`train classifier`: the attribute classifier (evaluation/classifier.py) on augmented phantoms.

Phantoms of both modalities are rendered at 128 px and box-filtered to 64, as the diffusion model
sees them. Labels: the 12 registry attributes (0 where not applicable) and the modality. Training
batches are augmented (blur, noise, colour / brightness / contrast jitter, small shifts) so that
generated images, which are never as crisp as clean renders, are judged fairly. Held-out
evaluation uses phantoms from a disjoint seed range, clean and augmented.
"""

import hashlib
import json
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate.utils import set_seed

from pipelines.data import phantoms
from pipelines.data.attributes import ATTRIBUTES
from pipelines.evaluation.classifier import (INPUT_SIZE, OUTPUTS, AttributeClassifier, ClassifierConfig,
                                             save_classifier)
from pipelines.training import schedules
from pipelines.training.checkpoints import RunClock, fingerprint
from pipelines.training.data import PhantomSet, build_phantom_set, to_unit_range
from pipelines.training.hardware import make_accelerator
from pipelines.training.loop import LoopSettings, run_loop, trained_tensors
from pipelines.training.options import HELD_OUT_SEED, check_classifier_arguments, classifier_widths
from pipelines.training.records import command_line

BLUR_SIGMA = (0.0, 1.2)  # pixels at 64 px
NOISE_STD = (0.0, 0.06)  # on the [0, 1] scale
MAX_SHIFT = 3  # pixels
CHECKPOINT_EVERY = 200


# ----------------------------------------------------------------------------- data and labels

def targets(data: PhantomSet) -> torch.Tensor:
    """[N, 13]: registry labels (already 0 for the other modality) and modality_cxr."""
    cxr = torch.tensor([[float(m == "cxr")] for m in data.modality])
    return torch.cat([data.labels, cxr], dim=1)


# ----------------------------------------------------------------------------- augmentation

def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable blur with one sigma per image (sigma 0 leaves the image unchanged)."""
    b, c, h, w = x.shape
    radius = 3
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype)
    s = sigma.clamp(min=1e-3)[:, None]
    kernel = torch.exp(-0.5 * (offsets[None] / s) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)  # [B, 7]; sigma ~0 gives a delta
    kernel = kernel.repeat_interleave(c, dim=0)  # one per channel
    flat = x.reshape(1, b * c, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"),
                    kernel[:, None, None, :], groups=b * c)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"),
                    kernel[:, None, :, None], groups=b * c)
    return flat.reshape(b, c, h, w)


def _shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    b, _, h, w = x.shape
    padded = F.pad(x, (MAX_SHIFT,) * 4, mode="replicate")
    dy = torch.randint(0, 2 * MAX_SHIFT + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * MAX_SHIFT + 1, (b,), generator=generator)
    return torch.stack([p[:, y:y + h, x_:x_ + w] for p, y, x_ in zip(padded, dy, dx)])


def augment(images_uint8: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> float in [-1, 1], each augmentation applied to a random subset."""
    x = images_uint8.float() / 255.0
    b = x.shape[0]

    def pick(p):  # which images get this augmentation, as a [B, 1, 1, 1] 0/1 mask
        return (torch.rand(b, generator=generator) < p).float()[:, None, None, None]

    def uniform(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(b, *shape, generator=generator)

    x = torch.where(pick(0.5) > 0, _shift(x, generator), x)
    sigma = uniform(*BLUR_SIGMA) * pick(0.6).flatten()
    x = _gaussian_blur(x, sigma)
    # Colour: per-channel gain (slight tints), then contrast about the image mean, then brightness.
    on = pick(0.7)
    gain = 1 + on * uniform(-0.08, 0.08, 3)[:, :, None, None]
    contrast = 1 + on * uniform(-0.2, 0.2)[:, None, None, None]
    brightness = on * uniform(-0.08, 0.08)[:, None, None, None]
    x = x * gain
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean + brightness
    std = uniform(*NOISE_STD)[:, None, None, None] * pick(0.5)
    x = x + std * torch.randn(x.shape, generator=generator)
    return x.clamp(0, 1) * 2 - 1


# ----------------------------------------------------------------------------- evaluation

@torch.no_grad()
def evaluate(clf: AttributeClassifier, data: PhantomSet, augmented: bool = False,
             seed: int = 0) -> dict[str, float]:
    """Accuracy per output at threshold 0.5: each attribute over the images of its own modality
    (images of the other modality are trivially 0), modality_cxr over all images."""
    clf.eval()
    y = targets(data)
    generator = torch.Generator().manual_seed(seed)
    logits = []
    for i in range(0, len(data), 256):
        chunk = data.images[i:i + 256]
        x = augment(chunk, generator) if augmented else to_unit_range(chunk)
        logits.append(clf(x))
    correct = (torch.cat(logits) > 0).float() == y
    modality = np.array(data.modality)
    result = {}
    for j, name in enumerate(OUTPUTS):
        rows = (modality == ATTRIBUTES[j].modality) if j < len(ATTRIBUTES) else np.ones(len(modality), bool)
        result[name] = float(correct[torch.from_numpy(rows), j].float().mean())
    return result


def phantom_fingerprint() -> str:
    """sha256 over the phantom renderer's source: a shipped classifier whose fingerprint differs
    from the code's was trained on a different phantom world and should be retrained."""
    digest = hashlib.sha256()
    for path in sorted(Path(phantoms.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


# ----------------------------------------------------------------------------- training

def classification_loss(clf, data: PhantomSet, y: torch.Tensor, batch: int, generator: torch.Generator):
    index = torch.randint(0, len(data), (batch,), generator=generator)
    return F.binary_cross_entropy_with_logits(clf(augment(data.images[index], generator)), y[index]), {}


def report(clf, args, clock: RunClock) -> None:
    """Held-out accuracy, clean and augmented, saved with the classifier and printed."""
    held_out = build_phantom_set(args.eval_n, HELD_OUT_SEED, INPUT_SIZE)
    clean = evaluate(clf, held_out)
    augmented = evaluate(clf, held_out, augmented=True, seed=1)
    seconds = clock.seconds()
    extra = {"command": command_line("classifier", args), "seconds": round(seconds, 1),
             "steps": args.steps, "batch": args.batch,
             "train_phantoms": args.n, "train_seeds": [args.seed, args.seed + args.n],
             "phantom_source_sha256": phantom_fingerprint(),
             "held_out": {"phantoms": args.eval_n, "first_seed": HELD_OUT_SEED,
                          "accuracy_clean": clean, "accuracy_augmented": augmented}}
    save_classifier(clf, args.out, extra)
    print(f"classifier saved to {args.out} after {seconds:.0f} s")
    print(f"{'output':<16} {'clean':>7} {'augmented':>9}")
    for name in OUTPUTS:
        print(f"{name:<16} {clean[name]:7.4f} {augmented[name]:9.4f}")
    print(json.dumps({"min_clean": min(clean.values()), "min_augmented": min(augmented.values())}))


def train_classifier(args) -> Path:
    check_classifier_arguments(args)
    widths = classifier_widths(args.widths)
    clock = RunClock()  # the recorded time covers rendering and the held-out evaluation too
    torch.set_num_threads(1)  # the machine is shared; a second thread gains little here
    accelerator = make_accelerator("cpu")  # this trainer has no --device: it runs on the CPU
    set_seed(args.seed)
    clf = AttributeClassifier(ClassifierConfig(widths=widths, norm=args.norm))
    data = build_phantom_set(args.n, args.seed, INPUT_SIZE)
    y = targets(data)
    settings = LoopSettings(
        name="classifier", steps=args.steps, seed=args.seed, checkpoints=Path(args.workdir),
        learning_rate=partial(schedules.warm_up_cosine, args.lr, steps=args.steps),
        checkpoint_every=CHECKPOINT_EVERY, resume=args.resume, weight_decay=1e-4,
        fingerprint=fingerprint("classifier", widths=widths, norm=args.norm))
    clf.train()
    result = run_loop(accelerator, trained_tensors({"classifier": clf}), settings,
                      lambda step, generator: classification_loss(clf, data, y, args.batch, generator), clock)
    if accelerator.is_main_process:
        report(clf, args, result.clock)
    return Path(args.out)
