"""`train dit`: the PixArt-architecture DiT and its HFFM projector on phantom latents.

Epsilon-prediction on the trained VAE's latents. Each conditioning channel is dropped to its null
tokens 10% of the time (independently), which trains the unconditional branches of two-scale
guidance. The alignment loss pulls each projection branch toward its visual prior. The shipped
weights are the EMA of the trained ones.

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

import copy
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, DPMSolverMultistepScheduler, PixArtTransformer2DModel
from tqdm import tqdm

from pipelines.data.attributes import ATTRIBUTE_NAMES
from pipelines.model.conditioners import join_prompts
from pipelines.model.projector import DisentangledProjector, join
from pipelines.core.errors import MedEditError
from pipelines.model.info import ModelInfo, check_text_tokens, write_model_info
from pipelines.model.presets import IMAGE_SIZE, NOISE_SCHEDULE, make_projector, make_transformer
from pipelines.model.text_encoder import MAX_LENGTH, TextEncoder
from pipelines.training.checkpoints import RunClock, load_training_state, save_training_state
from pipelines.training.data import build_phantom_set, to_unit_range
from pipelines.training.hardware import add_device_argument, describe, training_device
from pipelines.training.priors import PRIOR_DIMS, visual_priors

DROP = 0.1
DETAIL_MASKS = ("opacity", "pacemaker", "gel_bubbles", "ruler")


def add_arguments(parser):
    parser.add_argument("--preset", default="cpu", help="size preset: micro, cpu or gpu")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--n", type=int, default=16000, help="phantoms to train on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--align", type=float, default=0.1, help="alignment loss weight (0: off)")
    parser.add_argument("--conditioning", choices=("separate", "joined"), default="separate",
                        help="ablation: 'joined' puts both prompts into one channel")
    parser.add_argument("--vae", default="assets/mededit-default/vae")
    parser.add_argument("--workdir", default="runs/dit", help="checkpoints for --resume")
    parser.add_argument("--out", default="assets/mededit-default")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--init", help="a model folder whose transformer and projector training continues "
                                       "from, with a fresh optimiser (default: new ones of --preset)")
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--detail-weight", type=float, default=0.0,
                        help="extra weight of the error on --detail-masks (0: off)")
    parser.add_argument("--detail-masks", default=",".join(DETAIL_MASKS),
                        help="comma-separated phantom masks that --detail-weight weighs")
    parser.add_argument("--pair-weight", type=float, default=0.0,
                        help="weight of the counterfactual-partner term (0: off; see the module docstring)")
    parser.add_argument("--pair-keep", choices=("objects", "outside"), default="objects",
                        help="where the partner term asks for the true noise (see the module docstring)")
    parser.add_argument("--time-limit", type=float, help="stop after this many seconds of training")
    parser.add_argument("--text-tokens", type=int, default=MAX_LENGTH,
                        help="tokens read per caption channel (phantom captions take up to 50; before this option: 32)")
    add_device_argument(parser)


class TextCache:
    """Every distinct caption encoded once; batches gather rows by index."""

    def __init__(self, encoder: TextEncoder, captions: list[str], device: torch.device):
        unique = sorted(set(captions))
        states, masks = [], []
        for start in tqdm(range(0, len(unique), 256), desc="encoding captions"):
            encoded = encoder.encode(unique[start:start + 256])
            states.append(encoded.states.half())
            masks.append(encoded.mask)
        self.states, self.masks = torch.cat(states).to(device), torch.cat(masks).to(device)
        row = {caption: i for i, caption in enumerate(unique)}
        self.index = torch.tensor([row[c] for c in captions], device=device)

    def get(self, rows: torch.Tensor):
        i = self.index[rows]
        return self.states[i].float(), self.masks[i]


def caption_caches(encoder: TextEncoder, anatomy: list[str], style: list[str], conditioning: str,
                   device: torch.device) -> tuple[TextCache, TextCache]:
    """The two channels' caches; the 'joined' ablation puts both captions in the anatomy channel."""
    if conditioning == "joined":
        joined = [join_prompts(a, s) for a, s in zip(anatomy, style)]
        return TextCache(encoder, joined, device), TextCache(encoder, [""] * len(joined), device)
    return TextCache(encoder, anatomy, device), TextCache(encoder, style, device)


def detail_mask_names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in ATTRIBUTE_NAMES]
    if unknown or not names:
        raise MedEditError(f"--detail-masks {text!r}: name attributes among {', '.join(ATTRIBUTE_NAMES)}")
    return names


def loss_weights(detail: torch.Tensor, latent_size: int, weight: float) -> torch.Tensor:
    """Per latent pixel 1 + weight x the detail coverage there (uint8 [N, 1, S, S] box-filtered)."""
    coverage = F.avg_pool2d(detail.float() / 255, detail.shape[-1] // latent_size)
    return 1 + weight * coverage


def touched(coverage: torch.Tensor, latent_size: int) -> torch.Tensor:
    """1 on the latent pixels that uint8 coverage [N, 1, S, S] touches at all."""
    return F.max_pool2d((coverage > 0).float(), coverage.shape[-1] // latent_size)


def outside_change(change: torch.Tensor, latent_size: int) -> torch.Tensor:
    """1 on the latent pixels a partner's toggle leaves alone, 0 on those it touches and their
    8 neighbours (the VAE's receptive field spreads a change a little). change: uint8 [N, 1, S, S]."""
    return 1 - F.max_pool2d(touched(change, latent_size), 3, stride=1, padding=1)


def pair_keep_mask(data, latent_size: int, keep: str) -> torch.Tensor:
    """Where the partner term asks for the true noise: outside the grown change, on the phantom's
    objects alone ('objects') or everywhere ('outside')."""
    outside = outside_change(data.partner_change, latent_size)
    return outside * touched(data.objects, latent_size) if keep == "objects" else outside


def partner_tokens(projector: DisentangledProjector, anatomy_text: TextCache, style_text: TextCache,
                   rows: torch.Tensor, joined: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The partners' caption tokens and mask, never dropped: an edit conditions on both channels
    (the joined ablation on the anatomy one alone)."""
    keep = torch.zeros(len(rows), dtype=torch.bool, device=rows.device)
    return projector(*anatomy_text.get(rows), *style_text.get(rows), keep, torch.full_like(keep, joined))


@torch.no_grad()
def encode_latents(vae: AutoencoderKL, images: torch.Tensor) -> torch.Tensor:
    chunks = [vae.encode(to_unit_range(images[i:i + 256].to(vae.device))).latent_dist.mean
              for i in tqdm(range(0, len(images), 256), desc="encoding latents")]
    return torch.cat(chunks) * vae.config.scaling_factor


def check_loss_options(args) -> None:
    """The loss weights and the time limit, checked before any work starts."""
    for flag, value in (("--detail-weight", args.detail_weight), ("--pair-weight", args.pair_weight),
                        ("--time-limit", args.time_limit)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise MedEditError(f"{flag} must be a finite number >= 0, got {value}")


def train_dit(args) -> Path:
    check_loss_options(args)
    check_text_tokens(args.text_tokens, "--text-tokens")
    torch.manual_seed(args.seed)
    device = training_device(args.device)
    # 1. Data: phantoms, their latents, their encoded captions and priors, all on the device.
    vae = AutoencoderKL.from_pretrained(args.vae, use_safetensors=True).eval().to(device)
    detail_masks = detail_mask_names(args.detail_masks) if args.detail_weight else ()
    paired = args.pair_weight > 0
    data = build_phantom_set(args.n, args.seed + 1_000_000, IMAGE_SIZE, detail_masks=detail_masks,
                             partners=paired)
    latents = encode_latents(vae, data.images)
    weights = None
    if data.detail is not None:
        weights = loss_weights(data.detail, latents.shape[-1], args.detail_weight).to(device)
    encoder = TextEncoder(max_length=args.text_tokens, device=device)
    anatomy_text, style_text = caption_caches(encoder, data.anatomy, data.style, args.conditioning, device)
    anatomy_prior, style_prior = (p.to(device) for p in visual_priors(data.labels, data.modality))
    if paired:
        partner_anatomy, partner_style = caption_caches(encoder, data.partner_anatomy, data.partner_style,
                                                        args.conditioning, device)
        pair_keep = pair_keep_mask(data, latents.shape[-1], args.pair_keep).to(device)

    # 2. Models, optimiser, EMA, noise schedule.
    if args.init:
        load = dict(use_safetensors=True, torch_dtype=torch.float32)
        transformer = PixArtTransformer2DModel.from_pretrained(Path(args.init) / "transformer", **load)
        projector = DisentangledProjector.from_pretrained(Path(args.init) / "projector", **load)
    else:
        transformer = make_transformer(args.preset)
        projector = make_projector(args.preset, *PRIOR_DIMS)
    transformer, projector = transformer.to(device), projector.to(device)
    modules = {"transformer": transformer, "projector": projector}
    ema = {name: copy.deepcopy(m).requires_grad_(False) for name, m in modules.items()}
    parameters = [p for m in modules.values() for p in m.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=args.lr, weight_decay=0.0)
    noise_schedule = DDPMScheduler(**NOISE_SCHEDULE)
    alphas = noise_schedule.alphas_cumprod.to(device)
    start, clock = 0, RunClock()
    every = {**modules, **{f"ema_{k}": v for k, v in ema.items()}}
    if args.resume and (meta := load_training_state(args.workdir, every, optimizer, clock)):
        start = meta["step"]

    # 3. The loop.
    bar = tqdm(range(start, args.steps), desc="train dit", initial=start, total=args.steps)
    for step in bar:
        # Everything a step draws comes from (seed, step): a resumed run repeats the same steps.
        generator = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        for group in optimizer.param_groups:  # linear warm-up, then constant
            group["lr"] = args.lr * min(1.0, (step + 1) / 200)
        # Drawn on the CPU, so a step draws the same numbers on any device.
        rows = torch.randint(0, len(latents), (args.batch,), generator=generator).to(device)
        x0 = latents[rows]
        noise = torch.randn(x0.shape, generator=generator).to(device)
        t = torch.randint(0, len(alphas), (args.batch,), generator=generator).to(device)
        a = alphas[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
        a_states, a_mask = anatomy_text.get(rows)
        s_states, s_mask = style_text.get(rows)
        a_null = (torch.rand(args.batch, generator=generator) < DROP).to(device)
        s_null = (torch.rand(args.batch, generator=generator) < DROP).to(device)
        if args.conditioning == "joined":
            s_null = torch.ones_like(s_null)
        a_tokens, a_mask = projector.project("anatomy", a_states, a_mask, a_null)
        s_tokens, s_mask = projector.project("style", s_states, s_mask, s_null)
        tokens, mask = join(a_tokens, a_mask, s_tokens, s_mask)
        x, timestep = noisy, t
        if paired:
            # The partner's captions on the same noisy latents, in the same forward: the batch doubles.
            p_tokens, p_mask = partner_tokens(projector, partner_anatomy, partner_style, rows,
                                              args.conditioning == "joined")
            x, timestep = torch.cat([noisy, noisy]), torch.cat([t, t])
            tokens, mask = torch.cat([tokens, p_tokens]), torch.cat([mask, p_mask])
        prediction = transformer(x, encoder_hidden_states=tokens, encoder_attention_mask=mask,
                                 timestep=timestep).sample
        if paired:
            prediction, partner_prediction = prediction.chunk(2)
        if weights is None:
            loss = F.mse_loss(prediction, noise)
        else:
            loss = (weights[rows] * (prediction - noise).pow(2)).mean()
        if paired:
            loss = loss + args.pair_weight * (pair_keep[rows] * (partner_prediction - noise).pow(2)).mean()
        if args.align > 0:
            keep_a, keep_s = ~a_null, ~s_null
            align = 0.0
            if keep_a.any():
                align = align + F.binary_cross_entropy_with_logits(
                    projector.anatomy.predict_prior(a_tokens[keep_a], a_mask[keep_a]), anatomy_prior[rows][keep_a])
            if keep_s.any():
                align = align + F.binary_cross_entropy_with_logits(
                    projector.style.predict_prior(s_tokens[keep_s], s_mask[keep_s]), style_prior[rows][keep_s])
            loss = loss + args.align * align
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for name, module in modules.items():
                torch._foreach_lerp_(list(ema[name].parameters()), list(module.parameters()), 1 - decay)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        out_of_time = args.time_limit is not None and clock.seconds() >= args.time_limit
        if (step + 1) % 100 == 0 or step + 1 == args.steps or out_of_time:
            save_training_state(args.workdir, every, optimizer, step + 1, clock)
        if out_of_time:
            args.steps = step + 1  # what the model info records: the command that gives these weights
            break

    # 4. Save the EMA weights in diffusers layout, with the sampling scheduler and the model info.
    out = Path(args.out)
    # Stored in float16 so each file stays under 10 MB (a Space needs no LFS); loads as float32.
    ema["transformer"].to("cpu", torch.float16).save_pretrained(out / "transformer", safe_serialization=True)
    ema["projector"].to("cpu").save_pretrained(out / "projector", safe_serialization=True)
    DPMSolverMultistepScheduler(**NOISE_SCHEDULE, algorithm_type="dpmsolver++",
                                solver_order=2).save_pretrained(out / "scheduler")
    seconds = round(clock.seconds())  # read once, so the model info and the printed line agree
    info = ModelInfo.embedded_default(conditioning=args.conditioning, text_tokens=args.text_tokens)
    info.training = {"command": "python -m pipelines train dit " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
        if k not in ("run", "command", "what", "trainer", "time_limit") and not isinstance(v, bool) and v is not None),
        "steps": args.steps, "batch": args.batch, "seconds": seconds,
        "threads": torch.get_num_threads(), "device": describe(device)}
    write_model_info(out, info)
    print(f"dit saved to {out} after {seconds} s on {describe(device)}")
    return out
