"""`train classifier`: the attribute classifier (pipelines/classifier.py) on augmented phantoms.

Phantoms of both modalities are rendered at 128 px and box-filtered to 64, as the diffusion model
sees them. Labels: the 12 registry attributes (0 where not applicable) and the modality. Training
batches are augmented (blur, noise, colour / brightness / contrast jitter, small shifts) so that
generated images, which are never as crisp as clean renders, are judged fairly. Held-out
evaluation uses phantoms from a disjoint seed range, clean and augmented.
"""

import hashlib
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pipelines.data.attributes import ATTRIBUTES, MODALITIES
from pipelines.evaluation.classifier import (INPUT_SIZE, OUTPUTS, AttributeClassifier, ClassifierConfig,
                                  save_classifier)
from pipelines.training.checkpoints import RunClock, load_training_state, save_training_state
from pipelines.training.data import PhantomSet, build_phantom_set, to_unit_range

HELD_OUT_SEED = 10_000_000  # training uses seeds [seed, seed + n); evaluation starts here
BLUR_SIGMA = (0.0, 1.2)  # pixels at 64 px
NOISE_STD = (0.0, 0.06)  # on the [0, 1] scale
MAX_SHIFT = 3  # pixels
CHECKPOINT_EVERY = 200


def add_arguments(parser):
    parser.add_argument("--n", type=int, default=12000, help="training phantoms (both modalities)")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--widths", default="32,64,128,128", help="channels per conv stage")
    parser.add_argument("--norm", default="batch", choices=("batch", "group"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-n", type=int, default=2000, help="held-out phantoms for evaluation")
    parser.add_argument("--workdir", default="runs/classifier", help="checkpoints for --resume")
    parser.add_argument("--out", default="assets/classifier")
    parser.add_argument("--resume", action="store_true")


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


@torch.no_grad()
def misclassified(clf: AttributeClassifier, n: int, seed: int) -> list[dict]:
    """The clean held-out phantoms the classifier gets wrong, with their factors (for the report)."""
    from pipelines.data.phantoms import phantom
    from pipelines.evaluation.classifier import predict_probs
    from pipelines.training.data import RENDER_SIZE
    wrong = []
    for i in range(n):
        m = MODALITIES[i % len(MODALITIES)]
        p = phantom(m, seed + i, size=RENDER_SIZE)
        probs = predict_probs(clf, [p.image])[0]
        for j, a in enumerate(ATTRIBUTES):
            if a.modality == m and int(probs[j] > 0.5) != p.labels[a.name]:
                wrong.append({"seed": seed + i, "attribute": a.name, "label": p.labels[a.name],
                              "prob": round(float(probs[j]), 3), "factors": p.factors})
    return wrong


def phantom_fingerprint() -> str:
    """sha256 over the phantom renderer's source: a shipped classifier whose fingerprint differs
    from the code's was trained on a different phantom world and should be retrained."""
    import pipelines.data.phantoms as phantoms
    digest = hashlib.sha256()
    for path in sorted(Path(phantoms.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


# ----------------------------------------------------------------------------- training

def lr_factor(step: int, steps: int) -> float:
    """Linear warm-up over the first 5% of steps, then cosine decay to zero."""
    warm = max(1, steps // 20)
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + np.cos(np.pi * min(1.0, (step - warm) / max(1, steps - warm))))


def train_classifier(args) -> Path:
    torch.set_num_threads(1)  # the machine is shared; a second thread gains little here
    clock = RunClock()
    torch.manual_seed(args.seed)
    widths = tuple(int(w) for w in str(args.widths).split(","))
    clf = AttributeClassifier(ClassifierConfig(widths=widths, norm=args.norm))
    data = build_phantom_set(args.n, args.seed, INPUT_SIZE)
    if args.seed + args.n > HELD_OUT_SEED:
        raise SystemExit(f"training seeds reach {args.seed + args.n}, into the held-out range "
                         f"starting at {HELD_OUT_SEED}")
    y = targets(data)
    optimizer = torch.optim.AdamW(clf.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, args.steps))
    generator = torch.Generator().manual_seed(args.seed)
    start = 0
    if args.resume and (meta := load_training_state(args.workdir, {"classifier": clf}, optimizer, clock)):
        start = meta["step"]
        generator.set_state(torch.tensor(meta["extra"]["generator"], dtype=torch.uint8))
        for _ in range(start):
            schedule.step()
    clf.train()
    bar = tqdm(range(start, args.steps), desc="train classifier", initial=start, total=args.steps)
    for step in bar:
        index = torch.randint(0, len(data), (args.batch,), generator=generator)
        loss = F.binary_cross_entropy_with_logits(clf(augment(data.images[index], generator)), y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % CHECKPOINT_EVERY == 0 or step + 1 == args.steps:
            save_training_state(args.workdir, {"classifier": clf}, optimizer, step + 1, clock,
                                {"generator": generator.get_state().tolist()})

    held_out = build_phantom_set(args.eval_n, HELD_OUT_SEED, INPUT_SIZE)
    clean = evaluate(clf, held_out)
    augmented = evaluate(clf, held_out, augmented=True, seed=1)
    seconds = round(clock.seconds(), 1)
    command = "python -m pipelines " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    extra = {"command": command, "seconds": seconds, "steps": args.steps, "batch": args.batch,
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
    return Path(args.out)
