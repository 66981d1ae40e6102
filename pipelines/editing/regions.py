"""Region control for an edit of an uploaded image (RadEdit): an edit mask and a keep mask.

The edit mask says where the edit may change the image (everywhere when absent); the keep mask
says what must stay (a device when removing an effusion), and wins where the two overlap. Both are
[H, W] masks at the model's image size; they act in latent space, blended at every tail step
(sampling.Keep), so a latent pixel may change only when its cell touches the edit mask and does
not touch the keep mask.
"""

import base64
from dataclasses import dataclass

import numpy as np

from pipelines.core.errors import MedEditError


def as_mask(value, name: str) -> np.ndarray | None:
    """A 2-D boolean mask from bool, 0/1 or 0..255 arrays (True: above half of the range). A
    painted layer ([H, W, 4]) counts where it is opaque, if it has transparency; colour ([H, W, 3])
    where any channel is bright."""
    if value is None:
        return None
    a = np.asarray(value)
    if a.ndim == 3 and a.shape[2] == 4 and np.issubdtype(a.dtype, np.number) and a[..., 3].min() < a[..., 3].max():
        a = a[..., 3]
    elif a.ndim == 3 and a.shape[2] in (1, 3, 4):
        a = a[..., :3].max(axis=2)
    if a.ndim != 2 or a.size == 0:
        raise MedEditError(f"the {name} must be a 2-D image, got shape {a.shape}")
    if a.dtype == bool:
        return a.copy()
    if not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)):
        raise MedEditError(f"the {name} must hold numbers (0/1, or 0..255)")
    high = 255 if a.max() > 1 else 1
    return a > high / 2


@dataclass
class Regions:
    edit: np.ndarray | None = None  # [H, W] bool: only here may the edit change the image
    keep: np.ndarray | None = None  # [H, W] bool: here the image must stay; wins over `edit`

    def __post_init__(self):
        self.edit, self.keep = as_mask(self.edit, "edit mask"), as_mask(self.keep, "keep mask")
        if self.edit is not None and self.keep is not None and self.edit.shape != self.keep.shape:
            raise MedEditError(f"the edit mask ({self.edit.shape[1]}x{self.edit.shape[0]}) and the keep "
                               f"mask ({self.keep.shape[1]}x{self.keep.shape[0]}) differ in size")
        if self.edit is not None and not self.edit.any():
            raise MedEditError("the edit mask is empty: paint where the image may change")
        if self.edit is not None and self.keep is not None and not (self.edit & ~self.keep).any():
            raise MedEditError("the keep mask covers all of the edit mask: nothing is left to edit")

    @property
    def empty(self) -> bool:
        return self.edit is None and self.keep is None

    def check_size(self, size: int) -> None:
        for name, mask in (("edit mask", self.edit), ("keep mask", self.keep)):
            if mask is not None and mask.shape != (size, size):
                raise MedEditError(f"the {name} is {mask.shape[1]}x{mask.shape[0]}; it must match the "
                                   f"image the model edits ({size}x{size})")

    def latent(self, shape: tuple[int, int], device=None, dtype=None):
        """[1, 1, h, w] tensor, 1 where a latent pixel may change (None: everywhere): its cell
        touches the edit mask and not the keep mask."""
        # Imported here: the CLI checks masks (Regions) before torch loads.
        import torch
        import torch.nn.functional as F

        if self.empty:
            return None
        size = (self.edit if self.edit is not None else self.keep).shape
        if size[0] % shape[0] or size[1] % shape[1]:
            raise MedEditError(f"masks of {size[1]}x{size[0]} do not tile a {shape[1]}x{shape[0]} latent")
        cell = (size[0] // shape[0], size[1] // shape[1])
        touches = lambda m: F.max_pool2d(torch.from_numpy(m)[None, None].float(), cell)  # noqa: E731
        region = touches(self.edit) if self.edit is not None else torch.ones(1, 1, *shape)
        if self.keep is not None:
            region = region * (1 - touches(self.keep))
        return region.to(device, dtype or torch.float32)

    def record(self) -> dict:
        """The masks for provenance: size and bits (row-major, packed, base64), nothing else."""
        return {name: {"width": m.shape[1], "height": m.shape[0], "share": round(float(m.mean()), 4),
                       "packbits_base64": base64.b64encode(np.packbits(m)).decode("ascii")}
                for name, m in (("edit_mask", self.edit), ("keep_mask", self.keep)) if m is not None}

    def key(self) -> tuple:
        return tuple(None if m is None else np.packbits(m).tobytes() for m in (self.edit, self.keep))


def unpack_mask(record: dict) -> np.ndarray:
    """The [H, W] bool mask a provenance record holds (Regions.record's inverse)."""
    bits = np.frombuffer(base64.b64decode(record["packbits_base64"]), dtype=np.uint8)
    count = record["height"] * record["width"]
    return np.unpackbits(bits)[:count].astype(bool).reshape(record["height"], record["width"])


PASTE_MARGIN = 2  # pixels past the latent region still taken from the decoded edit (decoder spread)


def paste_outside(upload: np.ndarray, edited: np.ndarray, region, keep: np.ndarray | None = None) -> np.ndarray:
    """The decoded edit where it could change the image, the upload's own pixels elsewhere (like
    diffusers' inpainting overlay): `region` is the latent region the edit acted in ([1, 1, h, w],
    None: everywhere), grown by PASTE_MARGIN pixels and feathered over 3; `keep` ([H, W] bool)
    takes the upload's pixels whatever the region. [H, W, 3] uint8."""
    import torch
    import torch.nn.functional as F

    height, width = upload.shape[:2]
    if region is None:
        weight = torch.ones(1, 1, height, width)
    else:
        weight = F.interpolate(region.detach().float().cpu()[:1], size=(height, width), mode="nearest")
        weight = F.max_pool2d(weight, 2 * PASTE_MARGIN + 1, 1, PASTE_MARGIN)
        weight = F.avg_pool2d(weight, 3, 1, 1, count_include_pad=False)
    weight = weight[0, 0].numpy()
    if keep is not None:
        weight = weight * ~keep
    mixed = upload * (1 - weight[..., None]) + edited * weight[..., None]
    return np.round(mixed).astype(np.uint8)
