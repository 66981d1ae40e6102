"""The DiT trainer's data, on the training device: phantom latents (training/latent_cache.py),
each caption encoded once (and kept beside the latents in `--data-cache`), the visual priors, and
the loss masks of `--detail-weight` and `--pair-weight` (see training/dit.py)."""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save
from tqdm import tqdm

from pipelines.core.files import content_hash, write_atomic
from pipelines.model.conditioners import join_prompts
from pipelines.model.text_encoder import TextEncoder
from pipelines.training.latent_cache import phantom_latents
from pipelines.training.options import detail_mask_names
from pipelines.training.priors import visual_priors


def encode_all(encoder: TextEncoder, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    states, masks = [], []
    for start in tqdm(range(0, len(captions), 256), desc="encoding captions"):
        encoded = encoder.encode(captions[start:start + 256])
        states.append(encoded.states.half().cpu())
        masks.append(encoded.mask.cpu())
    return torch.cat(states), torch.cat(masks)


def encoded_captions(encoder: TextEncoder, captions: list[str], cache: str | None):
    """The captions' token states and masks, from `cache` when a run with the same encoder kept them
    (encoding 12,000 phantoms' captions takes minutes of every chunk of a long run on a CPU)."""
    if cache is None:
        return encode_all(encoder, captions)
    made_by = json.dumps({"encoder": content_hash(sorted(encoder.folder.rglob("*.safetensors"))),
                          "max_length": encoder.max_length, "captions": captions})
    path = Path(cache) / f"captions-{hashlib.sha256(made_by.encode()).hexdigest()[:16]}.safetensors"
    if path.exists():
        kept = load_file(path)
        return kept["states"], kept["masks"]
    states, masks = encode_all(encoder, captions)
    write_atomic(path, save({"states": states.contiguous(), "masks": masks.contiguous()}))
    return states, masks


class TextCache:
    """Every distinct caption encoded once; batches gather rows by index."""

    def __init__(self, encoder: TextEncoder, captions: list[str], device: torch.device, cache: str | None = None):
        unique = sorted(set(captions))
        states, masks = encoded_captions(encoder, unique, cache)
        self.states, self.masks = states.to(device), masks.to(device)
        row = {caption: i for i, caption in enumerate(unique)}
        self.index = torch.tensor([row[c] for c in captions], device=device)

    def get(self, rows: torch.Tensor):
        i = self.index[rows]
        return self.states[i].float(), self.masks[i]


def caption_caches(encoder: TextEncoder, anatomy: list[str], style: list[str], conditioning: str,
                   device: torch.device, cache: str | None = None) -> tuple[TextCache, TextCache]:
    """The two channels' caches; the 'joined' ablation puts both captions in the anatomy channel."""
    if conditioning == "joined":
        joined = [join_prompts(a, s) for a, s in zip(anatomy, style)]
        return TextCache(encoder, joined, device, cache), TextCache(encoder, [""] * len(joined), device, cache)
    return TextCache(encoder, anatomy, device, cache), TextCache(encoder, style, device, cache)


def loss_weights(detail: torch.Tensor, weight: float) -> torch.Tensor:
    """Per latent pixel 1 + weight x the detail masks' mean coverage there."""
    return 1 + weight * detail


def outside_change(change: torch.Tensor) -> torch.Tensor:
    """1 on the latent pixels a partner's toggle leaves alone, 0 on those it touches and their
    8 neighbours (the VAE's receptive field spreads a change a little). change: 0/1 [N, 1, h, w]."""
    return 1 - F.max_pool2d(change, 3, stride=1, padding=1)


def pair_keep_mask(change: torch.Tensor, objects: torch.Tensor, keep: str) -> torch.Tensor:
    """Where the partner term asks for the true noise: outside the grown change, on the phantom's
    objects alone ('objects') or everywhere ('outside'). Both 0/1 per latent pixel."""
    outside = outside_change(change)
    return outside * objects if keep == "objects" else outside


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
    """Phantoms' latents (kept in --data-cache when given), their encoded captions and priors (and
    partners), on the device."""
    detail_masks = detail_mask_names(args.detail_masks) if args.detail_weight else ()
    paired = args.pair_weight > 0
    phantoms = phantom_latents(args.vae, device, args.n, args.seed + 1_000_000, args.size, detail_masks,
                               partners=paired, cache=args.data_cache)
    encoder = TextEncoder(max_length=args.text_tokens, device=device)
    anatomy_text, style_text = caption_caches(encoder, phantoms.anatomy, phantoms.style, args.conditioning, device,
                                              args.data_cache)
    anatomy_prior, style_prior = (p.to(device) for p in visual_priors(phantoms.labels, phantoms.modality))
    data = DitData(phantoms.latents.to(device), anatomy_text, style_text, anatomy_prior, style_prior)
    if phantoms.detail is not None:
        data.weights = loss_weights(phantoms.detail, args.detail_weight).to(device)
    if paired:
        data.partner_anatomy, data.partner_style = caption_caches(
            encoder, phantoms.partner_anatomy, phantoms.partner_style, args.conditioning, device, args.data_cache)
        data.pair_keep = pair_keep_mask(phantoms.partner_change, phantoms.objects, args.pair_keep).to(device)
    return data
