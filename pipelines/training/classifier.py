"""`train classifier`: the attribute classifier (evaluation/classifier.py) on augmented phantoms.

Phantoms of both modalities are rendered at twice the input size (`--size`, default 64) and
box-filtered down, as the diffusion model sees them. Labels: the 12 registry attributes (0 where
not applicable) and the modality; with `--lesion-free p` (default 0.2) a share p of the dermoscopy
phantoms shows bare skin, and a 14th output, `lesion`, learns whether a lesion is shown (generated
images sometimes draw none). Training batches are augmented (blur, noise, colour / brightness /
contrast jitter, small shifts; blur and shifts in pixels at 64 px, scaled with the size) so that
generated images, which are never as crisp as clean renders, are judged fairly. Held-out
evaluation uses phantoms from a disjoint seed range, clean and augmented, with the same share of
bare skin.

`--init FOLDER` fine-tunes a trained classifier, adding the lesion output where it has none (the
whole network learns: the shipped 64-px classifier's features, frozen, tell bare skin from a
lesion too poorly for a linear output alone). `--time-limit s` stops at
the first step after s seconds and saves what it has (`--resume` goes on; the schedule follows
`--steps`).
"""

import hashlib
import json
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate.utils import set_seed

from pipelines.core.errors import MedEditError
from pipelines.data import phantoms
from pipelines.data.attributes import ATTRIBUTES
from pipelines.evaluation.classifier import (LESION, OUTPUTS, WITH_LESION, AttributeClassifier,
                                             ClassifierConfig, load_classifier, save_classifier)
from pipelines.training import schedules
from pipelines.training.checkpoints import RunClock, fingerprint
from pipelines.training.data import PhantomSet, build_phantom_set, to_unit_range
from pipelines.training.hardware import make_accelerator
from pipelines.training.loop import LoopSettings, run_loop, trained_tensors
from pipelines.training.options import HELD_OUT_SEED, check_classifier_arguments, classifier_widths
from pipelines.training.records import command_line

BLUR_SIGMA = (0.0, 1.2)  # pixels at 64 px
NOISE_STD = (0.0, 0.06)  # on the [0, 1] scale
MAX_SHIFT = 3  # pixels at 64 px
BLUR_RADIUS = 3  # pixels at 64 px
REFERENCE_SIZE = 64  # the size the pixel figures above are given at
CHECKPOINT_EVERY = 200


# ----------------------------------------------------------------------------- data and labels

def targets(data: PhantomSet, lesion: bool = False) -> torch.Tensor:
    """[N, 13]: registry labels (already 0 for the other modality) and modality_cxr; with `lesion`,
    [N, 14] with whether a lesion is shown last."""
    cxr = torch.tensor([[float(m == "cxr")] for m in data.modality])
    columns = [data.labels, cxr] + ([data.lesion[:, None]] if lesion else [])
    return torch.cat(columns, dim=1)


def pixels(figure: float, size: int) -> float:
    """A figure in pixels at 64 px, at `size`: the same blur or shift of the image's content."""
    return figure * size / REFERENCE_SIZE


# ----------------------------------------------------------------------------- augmentation

def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable blur with one sigma per image (sigma 0 leaves the image unchanged)."""
    b, c, h, w = x.shape
    radius = round(pixels(BLUR_RADIUS, w))
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
    most = round(pixels(MAX_SHIFT, w))
    padded = F.pad(x, (most,) * 4, mode="replicate")
    dy = torch.randint(0, 2 * most + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * most + 1, (b,), generator=generator)
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
    sigma = pixels(1.0, x.shape[-1]) * uniform(*BLUR_SIGMA) * pick(0.6).flatten()
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
    (images of the other modality are trivially 0; melanoma over those with a lesion, bare skin
    being trivially no melanoma), modality_cxr over all images, lesion over dermoscopy images."""
    clf.eval()
    y = targets(data, clf.config.has_lesion)
    generator = torch.Generator().manual_seed(seed)
    logits = []
    for i in range(0, len(data), 256):
        chunk = data.images[i:i + 256]
        x = augment(chunk, generator) if augmented else to_unit_range(chunk)
        logits.append(clf(x))
    correct = (torch.cat(logits) > 0).float() == y
    modality = np.array(data.modality)
    shown = data.lesion.numpy() > 0
    result = {}
    for j, name in enumerate(clf.config.outputs):
        if name == LESION:
            rows = modality == "dermoscopy"
        elif name == "melanoma":
            rows = (modality == "dermoscopy") & shown
        else:
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


def phantom_set(args, n: int, seed: int) -> PhantomSet:
    """n phantoms from `seed` at the input size, rendered at twice it, with the asked share of bare skin."""
    return build_phantom_set(n, seed, args.size, render_size=2 * args.size, lesion_free=args.lesion_free)


def report(clf, args, clock: RunClock, steps: int) -> None:
    """Held-out accuracy, clean and augmented, saved with the classifier and printed."""
    held_out = phantom_set(args, args.eval_n, HELD_OUT_SEED)
    clean = evaluate(clf, held_out)
    augmented = evaluate(clf, held_out, augmented=True, seed=1)
    seconds = clock.seconds()
    extra = {"command": command_line("classifier", args), "seconds": round(seconds, 1),
             "steps": steps, "batch": args.batch,
             "train_phantoms": args.n, "train_seeds": [args.seed, args.seed + args.n],
             "lesion_free": args.lesion_free, "init": args.init, "weights": "float16" if args.fp16 else "float32",
             "phantom_source_sha256": phantom_fingerprint(),
             "held_out": {"phantoms": args.eval_n, "first_seed": HELD_OUT_SEED,
                          "accuracy_clean": clean, "accuracy_augmented": augmented}}
    save_classifier(clf, args.out, extra, torch.float16 if args.fp16 else torch.float32)
    print(f"classifier saved to {args.out} after {steps} steps, {seconds:.0f} s")
    print(f"{'output':<16} {'clean':>7} {'augmented':>9}")
    for name in clf.config.outputs:
        print(f"{name:<16} {clean[name]:7.4f} {augmented[name]:9.4f}")
    print(json.dumps({"min_clean": min(clean.values()), "min_augmented": min(augmented.values())}))


def starting_classifier(args) -> AttributeClassifier:
    """A fresh classifier of the asked shape, or --init's with the lesion output added if asked
    (a new layer; everything else as trained). Its layers are convolutions and a global pool, so a
    classifier trained at one size starts a run at another (--size) with the same weights."""
    outputs = WITH_LESION if args.lesion_free > 0 else OUTPUTS
    if not args.init:
        return AttributeClassifier(ClassifierConfig(widths=classifier_widths(args.widths), norm=args.norm,
                                                    input_size=args.size, outputs=outputs))
    trained = load_classifier(args.init)
    clf = AttributeClassifier(ClassifierConfig(widths=trained.config.widths, norm=trained.config.norm,
                                               input_size=args.size, outputs=outputs))
    missing, unexpected = clf.load_state_dict(trained.state_dict(), strict=False)
    if unexpected or any(not name.startswith("lesion_head.") for name in missing):
        raise MedEditError(f"--init {args.init}: weights do not fit ({missing + unexpected})")
    return clf


def train_classifier(args) -> Path:
    check_classifier_arguments(args)
    clock = RunClock()  # the recorded time covers rendering and the held-out evaluation too
    torch.set_num_threads(1)  # the machine is shared; a second thread gains little here
    accelerator = make_accelerator("cpu")  # this trainer has no --device: it runs on the CPU
    set_seed(args.seed)
    clf = starting_classifier(args)
    data = phantom_set(args, args.n, args.seed)
    y = targets(data, clf.config.has_lesion)
    clf.train()
    settings = LoopSettings(
        name="classifier", steps=args.steps, seed=args.seed, checkpoints=Path(args.workdir),
        learning_rate=partial(schedules.warm_up_cosine, args.lr, steps=args.steps),
        checkpoint_every=CHECKPOINT_EVERY, resume=args.resume, weight_decay=1e-4,
        time_limit=args.time_limit,
        fingerprint=fingerprint("classifier", widths=clf.config.widths, norm=clf.config.norm,
                                size=args.size, outputs=clf.config.outputs, lesion_free=args.lesion_free,
                                init=args.init))
    result = run_loop(accelerator, trained_tensors({"classifier": clf}), settings,
                      lambda step, generator: classification_loss(clf, data, y, args.batch, generator), clock)
    if accelerator.is_main_process:
        report(clf, args, result.clock, result.steps)
    return Path(args.out)
