"""`train vae`: a small AutoencoderKL on phantoms (f4 for 64 px, `--preset f8 --size 256` for the
256-px model), trained on random crops (it is convolutional).

Loss: L1 + MSE reconstruction and a light KL (`--kl-weight`). After training the latent spread is measured and
stored as `scaling_factor`, so the DiT sees unit-variance latents.

`--detail-weight w` weighs the reconstruction error (1 + w) times on what tells attributes apart:
the thin marks that a small autoencoder blurs away first (hair, ink, rulers, bubbles, devices,
markers) and the lesion, whose pattern tells melanoma from a naevus; without it 1-2 px ink
strokes come out faint grey. `--init` fine-tunes an existing VAE instead of starting from scratch.

`--time-limit s` ends the run at the first checkpoint-able step after s seconds and saves what it
has: long runs go in chunks (`--resume` goes on), the learning rate following one cosine over `--steps`.
"""

import json
from functools import partial
from pathlib import Path

import torch
from accelerate.utils import set_seed
from diffusers import AutoencoderKL

from pipelines.core.errors import MedEditError
from pipelines.model.presets import make_vae
from pipelines.model.sizes import VAE_PRESETS
from pipelines.training import checks, schedules
from pipelines.training.data import build_phantom_set, to_unit_range
from pipelines.training.checkpoints import fingerprint
from pipelines.training.hardware import check_device, describe, make_accelerator
from pipelines.training.loop import LoopSettings, run_loop, trained_tensors
from pipelines.training.options import check_vae_arguments

DETAIL_MASKS = ("hair", "gel_bubbles", "ruler", "ink", "support_devices", "pacemaker", "marker", "lesion")
CHECKPOINT_EVERY = 250


def check_arguments(args) -> None:
    """Every number and path (training/options.py), then the crop against the VAE's depth."""
    check_vae_arguments(args)
    if args.init:
        blocks = len(json.loads((Path(args.init) / "config.json").read_text()).get("block_out_channels", ()))
    else:
        blocks = len(VAE_PRESETS[checks.choice("--preset", args.preset, VAE_PRESETS)]["block_out_channels"])
    factor = 2 ** max(0, blocks - 1)  # each encoder block but the last halves the size
    if not (factor <= args.crop <= args.size and args.crop % factor == 0):
        raise MedEditError(f"--crop must be a multiple of {factor} from {factor} to --size {args.size}, "
                           f"got {args.crop}")
    check_device(args.device)


def random_crops(images: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    n, _, h, w = images.shape
    ys = torch.randint(0, h - size + 1, (n,), generator=generator)
    xs = torch.randint(0, w - size + 1, (n,), generator=generator)
    return torch.stack([img[:, y:y + size, x:x + size] for img, y, x in zip(images, ys, xs)])


def reconstruction_loss(vae, data, args, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
    """One step's loss: a batch of crops (the image and its detail coverage cut alike), encoded,
    sampled, decoded."""
    index = torch.randint(0, len(data), (args.batch,), generator=generator)
    stacked = data.images[index]
    if data.detail is not None:
        stacked = torch.cat([stacked, data.detail[index]], 1)
    crops = random_crops(stacked, args.crop, generator).to(vae.device)
    batch = to_unit_range(crops[:, :3])
    weight = 1.0 if data.detail is None else 1.0 + args.detail_weight * crops[:, 3:].float() / 255
    posterior = vae.encode(batch).latent_dist
    reconstruction = vae.decode(posterior.sample(generator)).sample
    error = reconstruction - batch
    return (weight * (error.abs() + error.pow(2))).mean() + args.kl_weight * posterior.kl().mean(), {}


def save_vae(vae, data, out: Path) -> None:
    """Measure the latent spread, record it as `scaling_factor`, save in float16 (each file stays
    under 10 MB; it loads as float32)."""
    vae.eval()
    with torch.no_grad():
        latents = vae.encode(to_unit_range(data.images[:256].to(vae.device))).latent_dist.mean
    vae.register_to_config(scaling_factor=float(1.0 / latents.std()))
    vae.to("cpu", torch.float16).save_pretrained(out, safe_serialization=True)


def train_vae(args) -> Path:
    check_arguments(args)
    accelerator = make_accelerator(args.device)
    set_seed(args.seed)
    data = build_phantom_set(args.n, args.seed, args.size,
                             detail_masks=DETAIL_MASKS if args.detail_weight else ())
    if args.init:
        vae = AutoencoderKL.from_pretrained(args.init, use_safetensors=True, torch_dtype=torch.float32)
    else:
        vae = make_vae(args.preset, args.size)
    vae.to(accelerator.device)
    settings = LoopSettings(
        name="vae", steps=args.steps, seed=args.seed, checkpoints=Path(args.workdir),
        learning_rate=partial(schedules.cosine, args.lr, steps=args.steps),
        checkpoint_every=CHECKPOINT_EVERY, resume=args.resume,
        fingerprint=fingerprint("vae", init=args.init, preset=args.preset, size=args.size,
                                kl_weight=args.kl_weight),
        time_limit=args.time_limit)
    result = run_loop(accelerator, trained_tensors({"vae": vae}), settings,
                      lambda step, generator: reconstruction_loss(vae, data, args, generator))
    if accelerator.is_main_process:
        save_vae(vae, data, Path(args.out))
        print(f"vae saved to {args.out} after {result.clock.seconds():.0f} s on {describe(accelerator)}; "
              f"scaling_factor {vae.config.scaling_factor:.4f}")
    accelerator.wait_for_everyone()
    return Path(args.out)
