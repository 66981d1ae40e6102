"""`train lora`: a MedEdit adapter (LoRA + HFFM projector) for a PixArt checkpoint, on your images.

As VG-MedGen: LoRA on the transformer's attention, feed-forward and adaLN linears, trained jointly
with an HFFM projector that gives each channel (anatomy, style) its own branch over the checkpoint's
T5 states. Loss: epsilon MSE on VAE latents of the dataset's images, each channel dropped to its
null tokens 10% of the time (the unconditional branches of two-scale guidance); optionally the
alignment loss (each branch predicts its channel's labels from metadata.jsonl) and Med-Art's HLDF
colour loss through a short differentiable sampler (pipelines/hldf.py).

Runs unchanged on one CPU, one GPU or several through `accelerate launch` (the shared loop,
training/loop.py: every process draws its own batches, the LoRA and projector gradients are averaged
by hand, so the sampler's several forward passes per step need no DDP wrapper). Checkpoints hold
only the trainable weights and AdamW moments, every --checkpoint-every steps; --resume goes on from
the last one and reproduces the uninterrupted run.
"""

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate.utils import set_seed
from diffusers import DDPMScheduler
from PIL import Image, ImageOps

from pipelines.core.limits import CAPTION_DROPOUT
from pipelines.data.attributes import BY_NAME, modality_of
from pipelines.data.converters import validate_imagefolder
from pipelines.editing.sampling import Branches, added_conditions
from pipelines.model.adapters import add_lora, save_adapter, target_modules
from pipelines.model.pixart import T5_TOKENS, T5Conditioner, folder_revision
from pipelines.model.projector import DisentangledProjector
from pipelines.model.sources import check_pixart_folder, load_pixart, resolve_source
from pipelines.training import schedules
from pipelines.training.checkpoints import fingerprint
from pipelines.training.hardware import make_accelerator
from pipelines.training.hldf import hldf_loss
from pipelines.training.loop import LoopSettings, run_loop
from pipelines.training.options import check_lora_arguments, lora_checkpoints

RESUME_KEYS = ("model", "revision", "rank", "alpha", "targets", "no_projector", "projector_hidden",
               "batch", "lr", "align", "hldf", "hldf_steps", "hldf_batch", "seed")  # a resume must match
WEIGHT_DTYPES = {"no": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


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


# ------------------------------------------------------------------------------------ training

@dataclass
class LoraModel:
    """The frozen base pipeline's parts with LoRA injected, the new projector, the conditioner."""
    transformer: torch.nn.Module
    vae: torch.nn.Module
    conditioner: object  # pixart.T5Conditioner
    projector: DisentangledProjector | None
    alphas: torch.Tensor  # the base model's noise schedule, on the device
    prediction_type: str
    size: int  # image side in pixels
    dtype: torch.dtype  # of the frozen weights
    kind: str  # pixart-alpha or pixart-sigma
    folder: Path


def load_lora_model(args, data: ImageData, modules: list[str], device) -> LoraModel:
    """The base model, frozen, with LoRA injected (trained in float32) and a fresh projector."""
    dtype = WEIGHT_DTYPES[args.mixed_precision]
    folder = resolve_source(args.model, args.revision)
    kind = check_pixart_folder(folder)
    pipe = load_pixart(folder, dtype=dtype, device=device)
    transformer, vae, text_encoder = pipe.transformer, pipe.vae, pipe.text_encoder
    for module in (transformer, vae, text_encoder):
        module.requires_grad_(False).eval()
    transformer.vae_scale_factor = pipe.vae_scale_factor
    for p in add_lora(transformer, args.rank, args.alpha, modules):
        p.data = p.data.float()
    projector = None
    if not args.no_projector:
        torch.manual_seed(args.seed)
        projector = DisentangledProjector(
            text_dim=text_encoder.config.d_model, dim=transformer.config.caption_channels,
            null_tokens=4, anatomy_prior_dim=max(1, len(data.labels["anatomy"])),
            style_prior_dim=max(1, len(data.labels["style"])),
            hidden_dim=args.projector_hidden).to(device).train()
    conditioner = T5Conditioner(pipe.tokenizer, text_encoder, projector, T5_TOKENS[kind])
    schedule = DDPMScheduler.from_config(pipe.scheduler.config)
    return LoraModel(transformer, vae, conditioner, projector, schedule.alphas_cumprod.to(device),
                     schedule.config.prediction_type, transformer.config.sample_size * pipe.vae_scale_factor,
                     dtype, kind, folder)


def trainable(model: LoraModel) -> dict[str, torch.nn.Parameter]:
    """What the adapter holds and a checkpoint restores: the LoRA and projector weights."""
    named = {f"transformer.{n}": p for n, p in model.transformer.named_parameters() if p.requires_grad}
    if model.projector is not None:
        named.update({f"projector.{n}": p for n, p in model.projector.named_parameters()})
    return named


def alignment_loss(model: LoraModel, data: ImageData, rows, dropped, tokens: dict):
    """Each kept channel's branch predicts the labels metadata.jsonl gives; None when none applies."""
    extra = None
    for channel, (ch_tokens, ch_mask) in tokens.items():
        keep = ~dropped[channel]  # a dropped channel has no text to align
        if data.labels[channel] and keep.any():
            on = keep.to(ch_tokens.device)
            logits = model.projector.branch(channel).predict_prior(ch_tokens[on], ch_mask[on])
            wanted = data.targets[channel][rows][keep].to(logits.device)
            extra = (0.0 if extra is None else extra) + masked_bce(logits.float(), wanted)
    return extra


def lora_loss(args, model: LoraModel, data: ImageData, accelerator, generator: torch.Generator):
    """One step: noise MSE on the dataset's latents, plus the alignment and HLDF colour terms."""
    transformer, vae, device = model.transformer, model.vae, accelerator.device
    rows = torch.randint(0, len(data), (args.batch,), generator=generator)
    real = data.images(rows, model.size).to(device)
    with torch.no_grad():
        x0 = vae.encode(real.to(model.dtype)).latent_dist.mean.float() * vae.config.scaling_factor
    noise = torch.randn(x0.shape, generator=generator).to(device)
    t = torch.randint(0, len(model.alphas), (args.batch,), generator=generator).to(device)
    a = model.alphas[t].view(-1, 1, 1, 1)
    noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
    target = noise  # epsilon prediction; v-prediction checkpoints learn the velocity
    if model.prediction_type == "v_prediction":
        target = a.sqrt() * noise - (1 - a).sqrt() * x0
    dropped = {c: torch.rand(args.batch, generator=generator) < CAPTION_DROPOUT for c in ("anatomy", "style")}
    captions = {c: ["" if d else text for d, text in zip(dropped[c], data.captions(rows, c))]
                for c in ("anatomy", "style")}
    with accelerator.autocast():
        tokens = {c: channel_tokens(model.conditioner, c, captions[c]) for c in ("anatomy", "style")}
        joined = torch.cat([tokens["anatomy"][0], tokens["style"][0]], 1)
        mask = torch.cat([tokens["anatomy"][1], tokens["style"][1]], 1)
        prediction = transformer(noisy.to(model.dtype), encoder_hidden_states=joined.to(model.dtype),
                                 encoder_attention_mask=mask, timestep=t,
                                 added_cond_kwargs=added_conditions(transformer, noisy)).sample
        loss = F.mse_loss(prediction[:, :x0.shape[1]].float(), target)
        logs = {"mse": loss.item()}
        if args.align > 0 and model.projector is not None:
            extra = alignment_loss(model, data, rows, dropped, tokens)
            if extra is not None:
                loss = loss + args.align * extra
                logs["align"] = extra.item()
        if args.hldf > 0:
            pick = rows[:min(args.hldf_batch, args.batch)]
            branches = guidance_branches(model.conditioner, data.captions(pick, "anatomy"),
                                         data.captions(pick, "style"))
            colour = hldf_loss(transformer, vae, branches, real[:len(pick)], model.alphas, generator,
                               args.hldf_steps, args.guidance, args.guidance)
            loss = loss + args.hldf * colour
            logs["hldf"] = colour.item()
    return loss, logs


def write_adapter(args, model: LoraModel, data: ImageData, modules: list[str], accelerator,
                  seconds: float) -> Path:
    out = Path(args.out)
    modality = modality_of(*[r["anatomy"] for r in data.rows[:200]])
    attributes = [{"name": n, "modality": modality, "channel": c, "phrase": n.replace("_", " ")}
                  for c, names in data.labels.items() for n in names if n not in BY_NAME]
    align = args.align if model.projector is not None else 0.0
    save_adapter(out, model.transformer, model.projector, base_model=args.model,
                 base_revision=folder_revision(model.folder), rank=args.rank,
                 alpha=args.alpha or args.rank, targets=modules,
                 extra={"max_length": T5_TOKENS[model.kind], "priors": data.labels,
                        "attributes": attributes, "modality": modality,
                        "training": {"data": str(args.data), "images": len(data),
                                     "steps": args.steps, "batch": args.batch,
                                     "processes": accelerator.num_processes, "lr": args.lr,
                                     "align": align, "hldf": args.hldf,
                                     "hldf_steps": args.hldf_steps,
                                     "mixed_precision": args.mixed_precision, "seed": args.seed,
                                     "seconds": seconds}})
    accelerator.print(f"adapter saved to {out} after {seconds:.0f} s")
    return out


def train_lora(args) -> Path:
    check_lora_arguments(args)
    modules = target_modules(args.targets)
    data = load_image_data(args.data)  # checked whole before any model is loaded
    accelerator = make_accelerator("auto", args.mixed_precision)
    set_seed(args.seed)
    model = load_lora_model(args, data, modules, accelerator.device)
    settings = LoopSettings(
        name="lora", steps=args.steps, seed=args.seed, learning_rate=partial(schedules.constant, args.lr),
        checkpoints=Path(lora_checkpoints(args)), checkpoint_every=args.checkpoint_every, resume=args.resume,
        fingerprint=fingerprint("lora", rows=len(data), **{k: getattr(args, k) for k in RESUME_KEYS}),
        clip_norm=1.0)
    result = run_loop(accelerator, trainable(model), settings,
                      lambda step, generator: lora_loss(args, model, data, accelerator, generator))
    if accelerator.is_main_process:
        # read once, so the adapter config and the printed line agree
        write_adapter(args, model, data, modules, accelerator, round(result.clock.seconds(), 1))
    accelerator.wait_for_everyone()
    return Path(args.out)
