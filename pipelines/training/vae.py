"""`train vae`: a small f4 AutoencoderKL on phantoms, trained on random crops (it is convolutional).

Loss: L1 + MSE reconstruction and a light KL. After training the latent spread is measured and
stored as `scaling_factor`, so the DiT sees unit-variance latents.

`--detail-weight w` weighs the reconstruction error (1 + w) times on what tells attributes apart:
the thin marks that a small autoencoder blurs away first (hair, ink, rulers, bubbles, devices,
markers) and the lesion, whose pattern tells melanoma from a naevus. Without it the first shipped
VAE turned 1-2 px ink strokes into faint grey. `--init` fine-tunes an existing VAE instead of
starting from scratch.
"""

import math
from pathlib import Path

import torch
from tqdm import tqdm

from diffusers import AutoencoderKL

from pipelines.model.presets import IMAGE_SIZE, make_vae
from pipelines.training.checkpoints import RunClock, load_training_state, save_training_state
from pipelines.training.data import build_phantom_set, to_unit_range
from pipelines.training.hardware import add_device_argument, describe, training_device

KL_WEIGHT = 1e-6
DETAIL_MASKS = ("hair", "gel_bubbles", "ruler", "ink", "support_devices", "pacemaker", "marker", "lesion")


def add_arguments(parser):
    parser.add_argument("--preset", default="cpu", help="size preset: micro or cpu")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--crop", type=int, default=32, help="training crop in pixels")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--n", type=int, default=4000, help="phantoms to train on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="runs/vae", help="checkpoints for --resume")
    parser.add_argument("--out", default="assets/mededit-default/vae")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--init", help="a VAE folder to fine-tune (default: a fresh one of --preset)")
    parser.add_argument("--detail-weight", type=float, default=0.0,
                        help="extra weight of the error on thin marks (0: off)")
    add_device_argument(parser)


def random_crops(images: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    n, _, h, w = images.shape
    ys = torch.randint(0, h - size + 1, (n,), generator=generator)
    xs = torch.randint(0, w - size + 1, (n,), generator=generator)
    return torch.stack([img[:, y:y + size, x:x + size] for img, y, x in zip(images, ys, xs)])


def train_vae(args) -> Path:
    torch.manual_seed(args.seed)
    device = training_device(args.device)
    data = build_phantom_set(args.n, args.seed, IMAGE_SIZE,
                             detail_masks=DETAIL_MASKS if args.detail_weight else ())
    if args.init:
        vae = AutoencoderKL.from_pretrained(args.init, use_safetensors=True, torch_dtype=torch.float32)
    else:
        vae = make_vae(args.preset)
    vae.to(device)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=args.lr, weight_decay=0.0)
    start, clock = 0, RunClock()
    if args.resume and (meta := load_training_state(args.workdir, {"vae": vae}, optimizer, clock)):
        start = meta["step"]
    bar = tqdm(range(start, args.steps), desc="train vae", initial=start, total=args.steps)
    for step in bar:
        # Everything a step draws comes from (seed, step): a resumed run repeats the same steps.
        generator = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        for group in optimizer.param_groups:  # cosine decay
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        index = torch.randint(0, len(data), (args.batch,), generator=generator)
        stacked = data.images[index]
        if data.detail is not None:
            stacked = torch.cat([stacked, data.detail[index]], 1)
        crops = random_crops(stacked, args.crop, generator).to(device)  # one crop for the image and its detail
        batch = to_unit_range(crops[:, :3])
        weight = 1.0 if data.detail is None else 1.0 + args.detail_weight * crops[:, 3:].float() / 255
        posterior = vae.encode(batch).latent_dist
        reconstruction = vae.decode(posterior.sample(generator)).sample
        error = reconstruction - batch
        loss = (weight * (error.abs() + error.pow(2))).mean() + KL_WEIGHT * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % 250 == 0 or step + 1 == args.steps:
            save_training_state(args.workdir, {"vae": vae}, optimizer, step + 1, clock)
    vae.eval()
    with torch.no_grad():
        latents = vae.encode(to_unit_range(data.images[:256].to(device))).latent_dist.mean
    vae.register_to_config(scaling_factor=float(1.0 / latents.std()))
    # Stored in float16 so each file stays under 10 MB (a Space needs no LFS); loads as float32.
    vae.to("cpu", torch.float16).save_pretrained(args.out, safe_serialization=True)
    print(f"vae saved to {args.out} after {clock.seconds():.0f} s on {describe(device)}; "
          f"scaling_factor {vae.config.scaling_factor:.4f}")
    return Path(args.out)
