"""`train dit`: the PixArt-architecture DiT and its HFFM projector on phantom latents.

Epsilon-prediction on the trained VAE's latents. Each conditioning channel is dropped to its null
tokens (core.limits.CAPTION_DROPOUT of the time, independently), which trains the unconditional
branches of two-scale guidance. The alignment loss pulls each projection branch toward its visual
prior. The shipped weights are the EMA of the trained ones (diffusers' EMAModel, `--ema` its
largest decay).

`--detail-weight w` weighs the noise-prediction error (1 + w) times where `--detail-masks` cover
the image: small findings that fill a few latent pixels (a focal opacity is about 3 of 256) add
almost nothing to a plain mean, and the evaluator found them the least reliably drawn and edited.

`--pair-weight w` adds a counterfactual term aimed at what an edit does: the tail of an edit
denoises latents made under the neutral captions while conditioned on the edited ones. Each phantom
has a partner (the same seed with one attribute toggled, which changes only that attribute's
region), and the model, given the phantom's noisy latents but the partner's captions, must still
predict the true noise outside that region (grown by one latent pixel). Inside it the target is
left free, so the edit itself is learned by the plain loss. `--pair-keep objects` (the default)
asks this only on the objects the phantom shows (the lesion or heart, each attribute that is on):
where an added mark will land cannot be told from the neutral latents, so asking for the noise
everywhere else (`outside`) also teaches the model to hold back the edit (a pacemaker edit then
drew one in 34% of 100 images, against 73%: see the model card).

`--time-limit s` ends the loop at the first step after s seconds of training and saves as if
`--steps` had been the steps done (the learning rate is constant after warm-up, so that command
reproduces the weights); the model info records the steps done.
"""

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate.utils import set_seed
from diffusers import DDPMScheduler, DPMSolverMultistepScheduler, PixArtTransformer2DModel

from pipelines.core.errors import MedEditError
from pipelines.core.limits import CAPTION_DROPOUT
from pipelines.model.info import ModelInfo, check_text_tokens, write_model_info
from pipelines.model.presets import make_projector, make_transformer
from pipelines.model.sizes import DIT_PRESETS, NOISE_SCHEDULE
from pipelines.model.projector import DisentangledProjector, join
from pipelines.model.text_encoder import MAX_LENGTH
from pipelines.training import checks, schedules
from pipelines.training.checkpoints import fingerprint
from pipelines.training.dit_data import DitData, TextCache, prepare_data
from pipelines.training.hardware import check_device, describe, make_accelerator
from pipelines.training.loop import LoopResult, LoopSettings, run_loop, trained_tensors
from pipelines.training.options import check_dit_arguments
from pipelines.training.priors import PRIOR_DIMS
from pipelines.training.records import command_line
from pipelines.training.warm_start import is_new_layer, widen_patch

CHECKPOINT_EVERY = 100


def check_arguments(args) -> None:
    """Every number and path (training/options.py), then the preset, the text window (its default
    resolved here) and the device."""
    check_dit_arguments(args)
    if not args.init:
        checks.choice("--preset", args.preset, DIT_PRESETS)
    if args.text_tokens is None:
        args.text_tokens = MAX_LENGTH
    check_text_tokens(args.text_tokens, "--text-tokens")
    check_device(args.device)


def partner_tokens(projector: DisentangledProjector, anatomy_text: TextCache, style_text: TextCache,
                   rows: torch.Tensor, joined: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The partners' caption tokens and mask, never dropped: an edit conditions on both channels
    (the joined ablation on the anatomy one alone)."""
    keep = torch.zeros(len(rows), dtype=torch.bool, device=rows.device)
    return projector(*anatomy_text.get(rows), *style_text.get(rows), keep, torch.full_like(keep, joined))


def make_models(args, latent_size: int, device: torch.device) -> tuple[PixArtTransformer2DModel, DisentangledProjector]:
    """New ones of --preset for latents of `latent_size`, or those of --init to train on; an --init
    made for smaller latents has its patch widened to keep its token grid (training/warm_start.py)."""
    if args.init:
        load = dict(use_safetensors=True, torch_dtype=torch.float32)
        transformer = PixArtTransformer2DModel.from_pretrained(Path(args.init) / "transformer", **load)
        projector = DisentangledProjector.from_pretrained(Path(args.init) / "projector", **load)
        scale = widening(transformer.config.sample_size, latent_size)
        if scale > 1:
            transformer = widen_patch(transformer, scale)
    else:
        transformer = make_transformer(args.preset, latent_size)
        projector = make_projector(args.preset, *PRIOR_DIMS)
    return transformer.to(device), projector.to(device)


def widening(sample_size: int, latent_size: int) -> int:
    """How many times an --init's patch must grow for the --vae's latents."""
    if latent_size % sample_size:
        raise MedEditError(f"the --init model is made for {sample_size}x{sample_size} latents; the --vae "
                           f"gives {latent_size}x{latent_size}, not a whole multiple")
    return latent_size // sample_size


@dataclass
class NoisyBatch:
    rows: torch.Tensor  # [B] which phantoms
    noise: torch.Tensor  # [B, C, h, w] the target
    noisy: torch.Tensor  # [B, C, h, w]
    t: torch.Tensor  # [B] timesteps
    anatomy_null: torch.Tensor  # [B] bool: the channel dropped to its null tokens
    style_null: torch.Tensor


def draw_batch(data: DitData, alphas: torch.Tensor, batch: int, joined: bool,
               generator: torch.Generator) -> NoisyBatch:
    """Rows, noise, timesteps and dropped channels, in this order, drawn on the CPU so a step draws
    the same numbers on any device."""
    device = data.latents.device
    rows = torch.randint(0, len(data.latents), (batch,), generator=generator).to(device)
    x0 = data.latents[rows]
    noise = torch.randn(x0.shape, generator=generator).to(device)
    t = torch.randint(0, len(alphas), (batch,), generator=generator).to(device)
    a = alphas[t].view(-1, 1, 1, 1)
    noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
    anatomy_null = (torch.rand(batch, generator=generator) < CAPTION_DROPOUT).to(device)
    style_null = (torch.rand(batch, generator=generator) < CAPTION_DROPOUT).to(device)
    if joined:
        style_null = torch.ones_like(style_null)  # the ablation's style channel is always empty
    return NoisyBatch(rows, noise, noisy, t, anatomy_null, style_null)


def alignment_loss(projector: DisentangledProjector, data: DitData, batch: NoisyBatch,
                   a_tokens, a_mask, s_tokens, s_mask):
    """Each branch predicts its channel's visual prior from the tokens it made (dropped rows,
    having no text, are left out)."""
    keep_a, keep_s, rows = ~batch.anatomy_null, ~batch.style_null, batch.rows
    align = 0.0
    if keep_a.any():
        align = align + F.binary_cross_entropy_with_logits(
            projector.anatomy.predict_prior(a_tokens[keep_a], a_mask[keep_a]), data.anatomy_prior[rows][keep_a])
    if keep_s.any():
        align = align + F.binary_cross_entropy_with_logits(
            projector.style.predict_prior(s_tokens[keep_s], s_mask[keep_s]), data.style_prior[rows][keep_s])
    return align


def dit_loss(args, transformer, projector: DisentangledProjector, data: DitData,
             batch: NoisyBatch) -> tuple[torch.Tensor, dict]:
    """The noise-prediction error (weighted by --detail-weight), the partner term and the alignment."""
    joined, rows = args.conditioning == "joined", batch.rows
    a_tokens, a_mask = projector.project("anatomy", *data.anatomy_text.get(rows), batch.anatomy_null)
    s_tokens, s_mask = projector.project("style", *data.style_text.get(rows), batch.style_null)
    tokens, mask = join(a_tokens, a_mask, s_tokens, s_mask)
    x, timestep = batch.noisy, batch.t
    if data.paired:
        # The partner's captions on the same noisy latents, in the same forward: the batch doubles.
        p_tokens, p_mask = partner_tokens(projector, data.partner_anatomy, data.partner_style, rows, joined)
        x, timestep = torch.cat([batch.noisy, batch.noisy]), torch.cat([batch.t, batch.t])
        tokens, mask = torch.cat([tokens, p_tokens]), torch.cat([mask, p_mask])
    prediction = transformer(x, encoder_hidden_states=tokens, encoder_attention_mask=mask,
                             timestep=timestep).sample
    if data.paired:
        prediction, partner_prediction = prediction.chunk(2)
    if data.weights is None:
        loss = F.mse_loss(prediction, batch.noise)
    else:
        loss = (data.weights[rows] * (prediction - batch.noise).pow(2)).mean()
    if data.paired:
        loss = loss + args.pair_weight * (data.pair_keep[rows] * (partner_prediction - batch.noise).pow(2)).mean()
    if args.align > 0:
        loss = loss + args.align * alignment_loss(projector, data, batch, a_tokens, a_mask, s_tokens, s_mask)
    return loss, {}


def save_dit(args, transformer, projector, result: LoopResult, accelerator) -> Path:
    """The EMA weights in diffusers layout, the sampling scheduler and the model info."""
    result.apply_ema()
    out = Path(args.out)
    # Stored in float16 so each file stays under 10 MB (a Space needs no LFS); loads as float32.
    transformer.to("cpu", torch.float16).save_pretrained(out / "transformer", safe_serialization=True)
    projector.to("cpu").save_pretrained(out / "projector", safe_serialization=True)
    DPMSolverMultistepScheduler(**NOISE_SCHEDULE, algorithm_type="dpmsolver++",
                                solver_order=2).save_pretrained(out / "scheduler")
    seconds = round(result.clock.seconds())  # read once, so the model info and the printed line agree
    info = ModelInfo.embedded_default(conditioning=args.conditioning, text_tokens=args.text_tokens)
    info.image_size = args.size
    info.training = {"command": command_line("dit", args, leave_out=("time_limit",)),
                     "steps": args.steps, "batch": args.batch, "seconds": seconds,
                     "threads": torch.get_num_threads(), "device": describe(accelerator)}
    write_model_info(out, info)
    print(f"dit saved to {out} after {seconds} s on {describe(accelerator)}")
    return out


def train_dit(args) -> Path:
    check_arguments(args)
    accelerator = make_accelerator(args.device)
    set_seed(args.seed)
    data = prepare_data(args, accelerator.device)
    transformer, projector = make_models(args, data.latents.shape[-1], accelerator.device)
    widened = args.init and transformer.config.patch_size > PixArtTransformer2DModel.load_config(
        Path(args.init) / "transformer")["patch_size"]
    alphas = DDPMScheduler(**NOISE_SCHEDULE).alphas_cumprod.to(accelerator.device)
    joined = args.conditioning == "joined"

    def step_loss(step: int, generator: torch.Generator):
        return dit_loss(args, transformer, projector, data, draw_batch(data, alphas, args.batch, joined, generator))

    settings = LoopSettings(
        name="dit", steps=args.steps, seed=args.seed, learning_rate=partial(schedules.warm_up, args.lr),
        checkpoints=Path(args.workdir), checkpoint_every=CHECKPOINT_EVERY, resume=args.resume,
        fingerprint=fingerprint("dit", init=args.init, preset=args.preset, conditioning=args.conditioning,
                                size=args.size, new_layers_lr_scale=args.new_layers_lr_scale,
                                new_layers_alone=args.new_layers_alone),
        clip_norm=1.0, ema_decay=args.ema, time_limit=args.time_limit)
    if widened:
        settings.new_layers = lambda name: name.startswith("transformer.") and is_new_layer(name[len("transformer."):])
        settings.new_layers_rate_scale, settings.new_layers_alone = args.new_layers_lr_scale, args.new_layers_alone
    result = run_loop(accelerator, trained_tensors({"transformer": transformer, "projector": projector}),
                      settings, step_loss)
    args.steps = result.steps  # what the model info records: the command that gives these weights
    if accelerator.is_main_process:
        save_dit(args, transformer, projector, result, accelerator)
    accelerator.wait_for_everyone()
    return Path(args.out)
