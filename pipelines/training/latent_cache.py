"""The DiT trainer's phantoms as latents, rendered and encoded once per machine (`train dit
--data-cache DIR`).

At 256 px, rendering 12,000 phantoms with their partners and encoding them takes minutes of every
chunk of a run that spans several; what the trainer needs of them is small (latents and latent-pixel
masks: about 200 MB at 256 px), so it is kept in DIR and found again by what made it: the phantom
settings and the autoencoder's weights (a changed VAE or setting makes a new file, never a stale read).
"""

import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from safetensors.torch import load_file, save_file

from pipelines.core.files import content_hash, write_atomic
from pipelines.training.data import build_phantom_set, to_unit_range


@dataclass
class PhantomLatents:
    """What the DiT trainer keeps of its phantoms (captions as text: training/dit_data.py keeps them encoded)."""
    latents: torch.Tensor  # [N, C, h, w] scaled VAE latents
    labels: torch.Tensor  # [N, A]
    modality: list[str]
    anatomy: list[str]
    style: list[str]
    detail: torch.Tensor | None = None  # [N, 1, h, w] mean coverage of the detail masks per latent pixel
    partner_anatomy: list[str] | None = None
    partner_style: list[str] | None = None
    partner_change: torch.Tensor | None = None  # [N, 1, h, w] 1 where the toggle touches a latent pixel
    objects: torch.Tensor | None = None  # [N, 1, h, w] 1 where the phantom's objects touch one


TENSORS = ("latents", "labels", "detail", "partner_change", "objects")


@torch.no_grad()
def encode_latents(vae: AutoencoderKL, images: torch.Tensor) -> torch.Tensor:
    chunks = [vae.encode(to_unit_range(images[i:i + 64].to(vae.device))).latent_dist.mean
              for i in range(0, len(images), 64)]
    return torch.cat(chunks) * vae.config.scaling_factor


def mean_coverage(coverage: torch.Tensor, latent_size: int) -> torch.Tensor:
    """uint8 coverage [N, 1, S, S] (box-filtered masks) -> its mean over each latent pixel, 0 to 1."""
    return F.avg_pool2d(coverage.float() / 255, coverage.shape[-1] // latent_size)


def touched(coverage: torch.Tensor, latent_size: int) -> torch.Tensor:
    """1 on the latent pixels that uint8 coverage [N, 1, S, S] touches at all."""
    return F.max_pool2d((coverage > 0).float(), coverage.shape[-1] // latent_size)


def render_and_encode(vae: AutoencoderKL, n: int, seed: int, size: int, detail_masks: tuple[str, ...],
                      partners: bool) -> PhantomLatents:
    phantoms = build_phantom_set(n, seed, size, detail_masks=detail_masks, partners=partners)
    latents = encode_latents(vae, phantoms.images)
    h = latents.shape[-1]
    found = PhantomLatents(latents, phantoms.labels, phantoms.modality, phantoms.anatomy, phantoms.style)
    if phantoms.detail is not None:
        found.detail = mean_coverage(phantoms.detail, h)
    if partners:
        found.partner_anatomy, found.partner_style = phantoms.partner_anatomy, phantoms.partner_style
        found.partner_change, found.objects = touched(phantoms.partner_change, h), touched(phantoms.objects, h)
    return found


def cache_key(vae_folder, **settings) -> str:
    made_by = json.dumps({"vae": content_hash(sorted(Path(vae_folder).rglob("*.safetensors"))), **settings},
                         sort_keys=True)
    return hashlib.sha256(made_by.encode()).hexdigest()[:16]


def phantom_latents(vae_folder, device: torch.device, n: int, seed: int, size: int,
                    detail_masks: tuple[str, ...] = (), partners: bool = False,
                    cache: str | None = None) -> PhantomLatents:
    """The phantoms' latents, from `cache` when it holds them, else rendered, encoded (and kept there)."""
    settings = dict(n=n, seed=seed, size=size, detail_masks=list(detail_masks), partners=partners)
    path = Path(cache) / f"phantom-latents-{cache_key(vae_folder, **settings)}" if cache else None
    if path is not None and (path / "tensors.safetensors").exists():
        tensors = load_file(path / "tensors.safetensors")
        texts = json.loads((path / "captions.json").read_text())
        return PhantomLatents(**{f.name: tensors.get(f.name, texts.get(f.name)) for f in fields(PhantomLatents)})
    vae = AutoencoderKL.from_pretrained(vae_folder, use_safetensors=True).eval().to(device)
    found = render_and_encode(vae, n, seed, size, detail_masks, partners)
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        texts = {f.name: getattr(found, f.name) for f in fields(found) if f.name not in TENSORS}
        write_atomic(path / "captions.json", json.dumps(texts).encode())
        tensors = {name: getattr(found, name).contiguous() for name in TENSORS if getattr(found, name) is not None}
        save_file(tensors, path / "tensors.tmp")
        (path / "tensors.tmp").rename(path / "tensors.safetensors")  # last: its presence means complete
    return found
