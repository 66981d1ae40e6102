"""`train lora`: a MedEdit adapter (LoRA + HFFM projector) for a PixArt checkpoint, on your images.

As VG-MedGen: LoRA on the transformer's attention, feed-forward and adaLN linears, trained jointly
with an HFFM projector that gives each channel (anatomy, style) its own branch over the checkpoint's
T5 states. Loss: epsilon MSE on VAE latents of the dataset's images, each channel dropped to its
null tokens 10% of the time (the unconditional branches of two-scale guidance); optionally the
alignment loss (each branch predicts its channel's labels from metadata.jsonl) and Med-Art's HLDF
colour loss through a short differentiable sampler (pipelines/hldf.py).

Runs unchanged on one CPU, one GPU or several through `accelerate launch`: every process draws its
own batches, and the LoRA and projector gradients (a few MB) are averaged across processes by hand,
so the sampler's several forward passes per step need no DDP wrapper. Checkpoints hold only the
trainable weights and AdamW moments (safetensors), every --checkpoint-every steps; --resume goes on
from the last one and, as batches are drawn from (seed, process, step), reproduces the same run.
"""

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from tqdm import tqdm

from pipelines.model.adapters import add_lora, save_adapter, target_modules
from pipelines.data.attributes import BY_NAME, modality_of
from pipelines.model.projector import DisentangledProjector
from pipelines.data.converters import validate_imagefolder
from pipelines.core.errors import MedEditError
from pipelines.editing.sampling import Branches, added_conditions
from pipelines.training.checkpoints import RunClock, load_training_state, save_training_state

DROP = 0.1  # per-channel dropout to the null tokens
PRECISIONS = ("no", "bf16", "fp16")


def add_arguments(parser):
    parser.add_argument("--model", required=True, help="PixArt checkpoint: Hub repo id or local folder")
    parser.add_argument("--revision", default=None, help="Hub branch, tag or commit to pin")
    parser.add_argument("--data", required=True, help="imagefolder: images + metadata.jsonl "
                        "(file_name, anatomy, style[, labels]); see `python -m pipelines convert`")
    parser.add_argument("--out", required=True, help="adapter folder to write")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=None, help="LoRA alpha (default: rank)")
    parser.add_argument("--targets", default="attn,ff,adaln",
                        help="LoRA targets: groups attn, ff, adaln and/or module names, comma-separated")
    parser.add_argument("--no-projector", action="store_true",
                        help="LoRA only: the channels stay plain T5 states, no HFFM projector")
    parser.add_argument("--projector-hidden", type=int, default=256, help="HFFM MLP width")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=4, help="images per process and step")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--align", type=float, default=0.1, help="alignment loss weight (0: off)")
    parser.add_argument("--hldf", type=float, default=0.0, help="HLDF colour loss weight (0: off)")
    parser.add_argument("--hldf-steps", type=int, default=4, help="sampler steps for the colour loss")
    parser.add_argument("--hldf-batch", type=int, default=2, help="images sampled for the colour loss")
    parser.add_argument("--guidance", type=float, default=4.5,
                        help="guidance of both channels in the colour-loss sampler")
    parser.add_argument("--mixed-precision", choices=PRECISIONS, default="no")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--checkpoints", default=None, help="checkpoint folder (default: OUT-checkpoint)")
    parser.add_argument("--resume", action="store_true", help="go on from the last checkpoint")


# ------------------------------------------------------------------------------------ the data

@dataclass
class ImageData:
    folder: Path
    rows: list[dict]
    labels: dict  # channel -> list of label names
    targets: dict  # channel -> [N, K] float tensor, NaN where a row does not give the label

    def __len__(self):
        return len(self.rows)

    def images(self, index: torch.Tensor, size: int) -> torch.Tensor:
        """Rows' images, centre-cropped square and resized: [B, 3, S, S] in [-1, 1]."""
        batch = []
        for i in index.tolist():
            with Image.open(self.folder / self.rows[i]["file_name"]) as image:
                image = ImageOps.fit(image.convert("RGB"), (size, size), Image.Resampling.BICUBIC)
                batch.append(torch.from_numpy(np.asarray(image).copy()))
        return torch.stack(batch).permute(0, 3, 1, 2).float() / 127.5 - 1.0

    def captions(self, index: torch.Tensor, channel: str) -> list[str]:
        return [self.rows[i][channel] for i in index.tolist()]


def label_channel(name: str, rows: list[dict]) -> str:
    """The registry's channel for a known attribute; else the channel whose captions name it."""
    if name in BY_NAME:
        return BY_NAME[name].channel
    words = name.replace("_", " ").lower()
    hits = {c: sum(1 for r in rows if r.get("labels", {}).get(name) == 1 and words in r[c].lower())
            for c in ("anatomy", "style")}
    return "style" if hits["style"] > hits["anatomy"] else "anatomy"


def load_image_data(folder) -> ImageData:
    rows = validate_imagefolder(folder)
    names = sorted({k for r in rows for k in (r.get("labels") or {})})
    labels = {"anatomy": [], "style": []}
    for name in names:
        labels[label_channel(name, rows)].append(name)
    targets = {}
    for channel, channel_names in labels.items():
        table = [[float(r.get("labels", {}).get(n)) if r.get("labels", {}).get(n) in (0, 1)
                  else float("nan") for n in channel_names] for r in rows]
        targets[channel] = torch.tensor(table, dtype=torch.float32).reshape(len(rows), len(channel_names))
    return ImageData(Path(folder), rows, labels, targets)


# ------------------------------------------------------------------------------------ the model

class Trainable(torch.nn.Module):
    """A view of the trainable parameters (the same tensors) for checkpoints: no frozen weights."""

    def __init__(self, named: dict[str, torch.nn.Parameter]):
        super().__init__()
        self.params = torch.nn.ParameterDict({k.replace(".", "__"): p for k, p in named.items()})


def channel_tokens(conditioner, channel: str, captions: list[str], with_grad: bool = True):
    """T5 states (frozen) through the projector branch (trained); empty caption = null tokens."""
    encoded = conditioner.states(captions)
    is_null = torch.tensor([not c.strip() for c in captions], device=encoded.mask.device)
    with torch.set_grad_enabled(with_grad):
        return conditioner.project(channel, encoded.embeds.float(), encoded.mask, is_null)


def guidance_branches(conditioner, anatomy: list[str], style: list[str]) -> Branches:
    """(null, null), (anatomy, null), (anatomy, style) per caption pair, with the projector's
    gradient: what the sampler of the colour loss guides with."""
    null_a = channel_tokens(conditioner, "anatomy", [""] * len(anatomy))
    null_s = channel_tokens(conditioner, "style", [""] * len(style))
    full_a = channel_tokens(conditioner, "anatomy", anatomy)
    full_s = channel_tokens(conditioner, "style", style)
    pairs = [(null_a, null_s), (full_a, null_s), (full_a, full_s)]
    return Branches(torch.stack([torch.cat([a[0], s[0]], 1) for a, s in pairs], 1),  # [B, 3, L, D]
                    torch.stack([torch.cat([a[1], s[1]], 1) for a, s in pairs], 1))  # [B, 3, L]


def masked_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    known = ~targets.isnan()
    if not known.any():
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits[known], targets[known])


def fingerprint(args, data: ImageData) -> str:
    """What a checkpoint must agree with to be resumed."""
    keys = ("model", "revision", "rank", "alpha", "targets", "no_projector", "projector_hidden",
            "batch", "lr", "align", "hldf", "hldf_steps", "hldf_batch", "seed")
    text = json.dumps({**{k: getattr(args, k) for k in keys}, "rows": len(data)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def step_generator(seed: int, process: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + process * 7919 + step) % 2**63)


def same_start(accelerator, parameters: list[torch.nn.Parameter]) -> None:
    """Every process starts from the main process's LoRA and projector initialisation."""
    if accelerator.num_processes == 1:
        return
    from accelerate.utils import broadcast
    flat = broadcast(torch.cat([p.detach().flatten() for p in parameters]).contiguous(), from_process=0)
    with torch.no_grad():
        for p, value in zip(parameters, flat.split([p.numel() for p in parameters])):
            p.copy_(value.view_as(p))


def average_gradients(accelerator, parameters: list[torch.nn.Parameter]) -> None:
    """Mean of every process's gradients, in one all-reduce."""
    if accelerator.num_processes == 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    flat = accelerator.reduce(torch.cat([g.flatten() for g in grads]), reduction="mean")
    for p, g in zip(parameters, flat.split([g.numel() for g in grads])):
        p.grad = g.view_as(p).clone()


# ------------------------------------------------------------------------------------ training

def train_lora(args) -> Path:
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from diffusers import DDPMScheduler

    from pipelines.training.hldf import hldf_loss
    from pipelines.model.pixart import T5_TOKENS, T5Conditioner, folder_revision
    from pipelines.model.sources import check_pixart_folder, load_pixart, resolve_source

    for name, value, low in (("--steps", args.steps, 1), ("--batch", args.batch, 1),
                             ("--rank", args.rank, 1), ("--hldf-steps", args.hldf_steps, 1),
                             ("--hldf-batch", args.hldf_batch, 1),
                             ("--checkpoint-every", args.checkpoint_every, 1)):
        if value < low:
            raise MedEditError(f"{name} must be at least {low}, got {value}")
    modules = target_modules(args.targets)
    # 1. The data, checked whole before any model is loaded.
    data = load_image_data(args.data)
    # Several processes on a machine without CUDA (torchrun, tests) talk over gloo on the CPU.
    cpu = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    accelerator = Accelerator(mixed_precision=args.mixed_precision, cpu=cpu)
    main = accelerator.is_main_process
    set_seed(args.seed)
    weight_dtype = {"no": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.mixed_precision]

    # 2. The base model, frozen, with LoRA injected and a fresh projector.
    folder = resolve_source(args.model, args.revision)
    kind = check_pixart_folder(folder)
    pipe = load_pixart(folder, dtype=weight_dtype, device=accelerator.device)
    transformer, vae, text_encoder = pipe.transformer, pipe.vae, pipe.text_encoder
    for module in (transformer, vae, text_encoder):
        module.requires_grad_(False).eval()
    transformer.vae_scale_factor = pipe.vae_scale_factor
    size = transformer.config.sample_size * pipe.vae_scale_factor
    lora = add_lora(transformer, args.rank, args.alpha, modules)
    for p in lora:
        p.data = p.data.float()  # trained in float32 whatever the frozen weights are
    projector = None
    if not args.no_projector:
        torch.manual_seed(args.seed)
        projector = DisentangledProjector(
            text_dim=text_encoder.config.d_model, dim=transformer.config.caption_channels,
            null_tokens=4, anatomy_prior_dim=max(1, len(data.labels["anatomy"])),
            style_prior_dim=max(1, len(data.labels["style"])),
            hidden_dim=args.projector_hidden).to(accelerator.device).train()
    conditioner = T5Conditioner(pipe.tokenizer, text_encoder, projector, T5_TOKENS[kind])
    named = {f"transformer.{n}": p for n, p in transformer.named_parameters() if p.requires_grad}
    if projector is not None:
        named.update({f"projector.{n}": p for n, p in projector.named_parameters()})
    parameters = list(named.values())
    same_start(accelerator, parameters)
    optimizer = accelerator.prepare(torch.optim.AdamW(parameters, lr=args.lr, weight_decay=0.0))
    schedule = DDPMScheduler.from_config(pipe.scheduler.config)
    alphas = schedule.alphas_cumprod.to(accelerator.device)
    align = args.align if projector is not None else 0.0

    # 3. Resume.
    checkpoints = Path(args.checkpoints or f"{str(args.out).rstrip('/')}-checkpoint")
    state = {"trainable": Trainable(named)}
    print_ = accelerator.print
    start, stamp, clock = 0, fingerprint(args, data), RunClock()
    if args.resume:
        meta = load_training_state(checkpoints, state, optimizer, clock)
        if meta is not None:
            if meta["extra"].get("fingerprint") != stamp:
                raise MedEditError(f"the checkpoint in {checkpoints} is from a run with other settings; "
                                   "rerun with its settings or without --resume")
            start = meta["step"]
            print_(f"resuming from step {start}")

    # 4. The loop.
    bar = tqdm(range(start, args.steps), desc="train lora", initial=start, total=args.steps,
               disable=not accelerator.is_local_main_process)
    for step in bar:
        g = step_generator(args.seed, accelerator.process_index, step)
        rows = torch.randint(0, len(data), (args.batch,), generator=g)
        real = data.images(rows, size).to(accelerator.device)
        with torch.no_grad():
            x0 = vae.encode(real.to(weight_dtype)).latent_dist.mean.float() * vae.config.scaling_factor
        noise = torch.randn(x0.shape, generator=g).to(x0.device)
        t = torch.randint(0, len(alphas), (args.batch,), generator=g).to(x0.device)
        a = alphas[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
        target = noise  # epsilon prediction; v-prediction checkpoints learn the velocity
        if schedule.config.prediction_type == "v_prediction":
            target = a.sqrt() * noise - (1 - a).sqrt() * x0
        dropped = {c: torch.rand(args.batch, generator=g) < DROP for c in ("anatomy", "style")}
        captions = {c: ["" if d else text for d, text in zip(dropped[c], data.captions(rows, c))]
                    for c in ("anatomy", "style")}
        with accelerator.autocast():
            a_tokens, a_mask = channel_tokens(conditioner, "anatomy", captions["anatomy"])
            s_tokens, s_mask = channel_tokens(conditioner, "style", captions["style"])
            tokens, mask = torch.cat([a_tokens, s_tokens], 1), torch.cat([a_mask, s_mask], 1)
            prediction = transformer(noisy.to(weight_dtype), encoder_hidden_states=tokens.to(weight_dtype),
                                     encoder_attention_mask=mask, timestep=t,
                                     added_cond_kwargs=added_conditions(transformer, noisy)).sample
            loss = F.mse_loss(prediction[:, :x0.shape[1]].float(), target)
            logs = {"mse": loss.item()}
            if align > 0:
                extra = 0.0
                for channel, ch_tokens, ch_mask in (("anatomy", a_tokens, a_mask),
                                                    ("style", s_tokens, s_mask)):
                    keep = ~dropped[channel]  # a dropped channel has no text to align
                    if data.labels[channel] and keep.any():
                        on = keep.to(ch_tokens.device)
                        logits = projector.branch(channel).predict_prior(ch_tokens[on], ch_mask[on])
                        wanted = data.targets[channel][rows][keep].to(logits.device)
                        extra = extra + masked_bce(logits.float(), wanted)
                if torch.is_tensor(extra):
                    loss = loss + align * extra
                    logs["align"] = extra.item()
            if args.hldf > 0:
                pick = rows[:min(args.hldf_batch, args.batch)]
                branches = guidance_branches(conditioner, data.captions(pick, "anatomy"),
                                             data.captions(pick, "style"))
                colour = hldf_loss(transformer, vae, branches, real[:len(pick)], alphas, g, args.hldf_steps,
                                   args.guidance, args.guidance)
                loss = loss + args.hldf * colour
                logs["hldf"] = colour.item()
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        average_gradients(accelerator, parameters)
        accelerator.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})
        if (step + 1) % args.checkpoint_every == 0 or step + 1 == args.steps:
            if main:
                save_training_state(checkpoints, state, optimizer, step + 1, clock, {"fingerprint": stamp})
            accelerator.wait_for_everyone()

    # 5. The adapter folder.
    out = Path(args.out)
    seconds = round(clock.seconds(), 1)  # read once, so the adapter config and the printed line agree
    if main:
        modality = modality_of(*[r["anatomy"] for r in data.rows[:200]])
        attributes = [{"name": n, "modality": modality, "channel": c, "phrase": n.replace("_", " ")}
                      for c, names in data.labels.items() for n in names if n not in BY_NAME]
        save_adapter(out, transformer, projector, base_model=args.model,
                     base_revision=folder_revision(folder), rank=args.rank,
                     alpha=args.alpha or args.rank, targets=modules,
                     extra={"max_length": T5_TOKENS[kind], "priors": data.labels,
                            "attributes": attributes, "modality": modality,
                            "training": {"data": str(args.data), "images": len(data),
                                         "steps": args.steps, "batch": args.batch,
                                         "processes": accelerator.num_processes, "lr": args.lr,
                                         "align": align, "hldf": args.hldf,
                                         "hldf_steps": args.hldf_steps,
                                         "mixed_precision": args.mixed_precision, "seed": args.seed,
                                         "seconds": seconds}})
        print_(f"adapter saved to {out} after {seconds:.0f} s")
    accelerator.wait_for_everyone()
    return out
