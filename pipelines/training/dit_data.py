"""The DiT trainer's data, on the training device: phantom latents, each caption encoded once, the
visual priors, and the loss masks of `--detail-weight` and `--pair-weight` (see training/dit.py)."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from tqdm import tqdm

from pipelines.model.conditioners import join_prompts
from pipelines.model.text_encoder import TextEncoder
from pipelines.training.data import build_phantom_set, to_unit_range
from pipelines.training.options import detail_mask_names
from pipelines.training.priors import visual_priors


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


@torch.no_grad()
def encode_latents(vae: AutoencoderKL, images: torch.Tensor) -> torch.Tensor:
    chunks = [vae.encode(to_unit_range(images[i:i + 256].to(vae.device))).latent_dist.mean
              for i in tqdm(range(0, len(images), 256), desc="encoding latents")]
    return torch.cat(chunks) * vae.config.scaling_factor


@dataclass
class DitData:
    """Everything a step draws from, on the training device."""
    latents: torch.Tensor  # [N, C, h, w] scaled VAE latents of the phantoms
    anatomy_text: TextCache
    style_text: TextCache
    anatomy_prior: torch.Tensor  # [N, P] what each channel's alignment head predicts
    style_prior: torch.Tensor
    weights: torch.Tensor | None = None  # [N, 1, h, w] per latent pixel (--detail-weight)
    partner_anatomy: TextCache | None = None  # the counterfactual partners' captions (--pair-weight)
    partner_style: TextCache | None = None
    pair_keep: torch.Tensor | None = None  # [N, 1, h, w] where the partner term asks for the noise

    @property
    def paired(self) -> bool:
        return self.pair_keep is not None


def prepare_data(args, device: torch.device) -> DitData:
    """Phantoms, their latents, their encoded captions and priors (and partners), on the device."""
    vae = AutoencoderKL.from_pretrained(args.vae, use_safetensors=True).eval().to(device)
    detail_masks = detail_mask_names(args.detail_masks) if args.detail_weight else ()
    paired = args.pair_weight > 0
    phantoms = build_phantom_set(args.n, args.seed + 1_000_000, args.size, detail_masks=detail_masks,
                                 partners=paired)
    latents = encode_latents(vae, phantoms.images)
    size = latents.shape[-1]
    encoder = TextEncoder(max_length=args.text_tokens, device=device)
    anatomy_text, style_text = caption_caches(encoder, phantoms.anatomy, phantoms.style, args.conditioning, device)
    anatomy_prior, style_prior = (p.to(device) for p in visual_priors(phantoms.labels, phantoms.modality))
    data = DitData(latents, anatomy_text, style_text, anatomy_prior, style_prior)
    if phantoms.detail is not None:
        data.weights = loss_weights(phantoms.detail, size, args.detail_weight).to(device)
    if paired:
        data.partner_anatomy, data.partner_style = caption_caches(
            encoder, phantoms.partner_anatomy, phantoms.partner_style, args.conditioning, device)
        data.pair_keep = pair_keep_mask(phantoms, size, args.pair_keep).to(device)
    return data
