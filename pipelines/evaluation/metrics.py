"""Edit-quality metrics: does an edit change the target, only the target, and keep the rest intact.

Two families, all numpy (scipy for the Gaussian filter and the dilation):

* Classifier-based: ``cfrt`` / ``cfrt_per_seed`` (classifier flip rate along a trajectory,
  exactly as the latent-trajectory-traversal code defines it), ``attribute_accuracy`` and
  ``no_non_target_flip_rate`` (edits in which no other label flipped), with
  ``non_target_flips`` and ``flips_by_attribute`` saying which ones did.
* Preservation outside the edited factor: ``edit_footprint``, ``psnr_outside``, ``ssim_outside``.

Distribution quality (FID, KID) is torchmetrics', in ``distribution.py``.

Shapes: S seeds, T swap points (t*), K attributes (classifier columns), N rows, H x W images with 3 channels (or none). Probabilities are classifier sigmoids in [0, 1]. Images are
uint8 (0..255) or float in [0, 1]; both are compared on the [0, 1] scale (data range 1).
Every bad input raises ``MedEditError`` with a message saying what was expected.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from pipelines.core.errors import MedEditError

EDIT_FOOTPRINT = 24 / 255  # a pixel that moved more than this in some channel belongs to the edit
PSNR_MAX_DB = 100.0  # identical images have infinite PSNR; report this cap instead
SSIM_SIGMA = 1.5
SSIM_WINDOW = 11  # Gaussian window support (11 x 11), radius 5
SSIM_RADIUS = SSIM_WINDOW // 2
SSIM_K1, SSIM_K2 = 0.01, 0.03
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, for ssim_outside(on="luminance")


# ----------------------------------------------------------------------------- input checks

def _array(x, what: str) -> np.ndarray:
    """A float64 numpy copy of x (numpy, list or torch tensor), refusing NaN and inf."""
    if hasattr(x, "detach"):  # torch tensor: no torch import needed
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise MedEditError(f"{what}: not an array ({e})") from None
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise MedEditError(f"{what}: expected numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if a.size and not np.all(np.isfinite(a)):
        raise MedEditError(f"{what}: contains NaN or inf")
    return a


def _probs(x, what: str, ndim: int) -> np.ndarray:
    a = _array(x, what)
    if a.ndim != ndim:
        raise MedEditError(f"{what}: expected {ndim} dimensions, got shape {a.shape}")
    if a.size == 0:
        raise MedEditError(f"{what}: is empty (shape {a.shape})")
    if a.min() < 0 or a.max() > 1:
        raise MedEditError(f"{what}: probabilities must lie in [0, 1], got range "
                           f"[{a.min():.3g}, {a.max():.3g}]")
    return a


def _binary(x, what: str) -> np.ndarray:
    a = _array(x, what)
    if a.ndim != 2 or a.size == 0:
        raise MedEditError(f"{what}: expected a non-empty [N, A] array of 0/1, got shape {a.shape}")
    if not np.all((a == 0) | (a == 1)):
        raise MedEditError(f"{what}: labels must be 0 or 1 (threshold probabilities first)")
    return a.astype(bool)


def _index(i, k: int, names: Sequence[str] | None, what: str) -> int:
    """A column index from an int, or from an attribute name looked up in ``names``."""
    if isinstance(i, str):
        if names is None:
            raise MedEditError(f"{what}: got the name {i!r}; pass names=(column names) or an index")
        if i not in names:
            raise MedEditError(f"{what}: unknown attribute {i!r}; "
                               f"choose one of: {', '.join(names)}")
        return list(names).index(i)
    if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
        raise MedEditError(f"{what}: expected a column index or attribute name, got {i!r}")
    if not 0 <= int(i) < k:
        raise MedEditError(f"{what}: index {i} out of range for {k} attributes (0..{k - 1})")
    return int(i)


def _check_names(names, k: int) -> None:
    if names is not None and len(names) != k:
        raise MedEditError(f"names: {len(names)} names for {k} classifier columns")


def _edit_probs(p_neutral, p_edited):
    """Validated (p_neutral [S, K], p_edited [S, T, K]); a [S, K] p_edited means T = 1."""
    pn = _probs(p_neutral, "p_neutral", 2)
    pe = _array(p_edited, "p_edited")
    if pe.ndim == 2:
        pe = pe[:, None, :]
    pe = _probs(pe, "p_edited", 3)
    s, k = pn.shape
    if pe.shape[0] != s or pe.shape[2] != k:
        raise MedEditError(f"p_edited: shape {pe.shape} does not match p_neutral {pn.shape}; "
                           f"expected [S={s}, T, K={k}]")
    return pn, pe


# ----------------------------------------------------------------------------- classifier metrics

def cfrt_per_seed(p_neutral, p_edited, target, attribute_indices=None, direction: int = 1,
                  names: Sequence[str] | None = None) -> np.ndarray:
    """Whether each seed's edit moves the classifier toward the target more than any other.

    p_neutral: [S, K] sigmoid probabilities of the S neutral images (K attributes).
    p_edited:  [S, T, K] probabilities of the edits toward the target at T swap points (the paper
               uses t* in {5, 10, 15}); [S, K] is read as T = 1.
    target:    column index (or name, with ``names`` = the K column names) of the edited attribute.
    attribute_indices: the columns compared (indices or names); default all K. The target is always
               compared; at least one other column is required.
    direction: +1 for an edit that adds the target, -1 for one that removes it. For each seed and
               attribute k, Delta_k = mean over T of (p_k(edited) - p_k(neutral)), signed. With
               direction -1 only the target's Delta is negated (its drop counts as progress); the
               other attributes' Deltas stay signed, unchanged.
    Returns:   [S] bool, True where Delta_target > Delta_k for every other compared k (strict, so an
               edit that changes nothing does not flip).
    """
    pn, pe = _edit_probs(p_neutral, p_edited)
    k = pn.shape[1]
    _check_names(names, k)
    t = _index(target, k, names, "target")
    if direction not in (1, -1):
        raise MedEditError(f"direction: must be +1 (add) or -1 (remove), got {direction!r}")
    if attribute_indices is None:
        others = [j for j in range(k) if j != t]
    else:
        others = sorted({_index(j, k, names, "attribute_indices") for j in attribute_indices} - {t})
    if not others:
        raise MedEditError("attribute_indices: need at least one attribute besides the target "
                           "to compare with")
    delta = (pe - pn[:, None, :]).mean(axis=1)  # [S, K]
    d_target = direction * delta[:, t]
    return np.all(d_target[:, None] > delta[:, others], axis=1)


def cfrt(p_neutral, p_edited, target, attribute_indices=None, direction: int = 1,
         names: Sequence[str] | None = None) -> float:
    """CFRT: the share of seeds that flip, in [0, 1] (``cfrt_per_seed``: shapes and rule)."""
    return float(cfrt_per_seed(p_neutral, p_edited, target, attribute_indices, direction,
                               names).mean())


def attribute_accuracy(probs, labels, threshold: float = 0.5,
                       names: Sequence[str] | None = None) -> dict:
    """Per-attribute accuracy of thresholded probabilities against 0/1 labels.

    probs: [N, K] probabilities; labels: [N, K] of 0/1. A prediction is positive if p >= threshold.
    Returns {"per_attribute": [K] float array, "mean": float (unweighted mean over attributes)}
    plus "by_name": {name: accuracy} when ``names`` (K column names) is given.
    """
    p = _probs(probs, "probs", 2)
    y = _binary(labels, "labels")
    if p.shape != y.shape:
        raise MedEditError(f"probs {p.shape} and labels {y.shape} differ in shape")
    if not 0 < threshold < 1:
        raise MedEditError(f"threshold: must lie strictly between 0 and 1, got {threshold}")
    _check_names(names, p.shape[1])
    per = ((p >= threshold) == y).mean(axis=0)
    out = {"per_attribute": per, "mean": float(per.mean())}
    if names is not None:
        out["by_name"] = {n: float(a) for n, a in zip(names, per)}
    return out


def _labels_around_edit(p_neutral, p_edited, target, threshold: float, names):
    """Validated thresholded labels before [S, 1, K] and after [S, T, K] the edits, and the
    target's column."""
    pn, pe = _edit_probs(p_neutral, p_edited)
    k = pn.shape[1]
    _check_names(names, k)
    t = _index(target, k, names, "target")
    if not 0 < threshold < 1:
        raise MedEditError(f"threshold: must lie strictly between 0 and 1, got {threshold}")
    return pn[:, None, :] >= threshold, pe >= threshold, t


def non_target_flips(p_neutral, p_edited, target, threshold: float = 0.5, attribute_indices=None,
                     names: Sequence[str] | None = None) -> np.ndarray:
    """Which edits flipped some non-target attribute's thresholded label.

    p_neutral: [S, K]; p_edited: [S, T, K] (or [S, K] for T = 1); labels are p >= threshold.
    attribute_indices: the columns checked (default all K); the target is never checked.
    Returns [S, T] bool, True where at least one non-target label differs from the neutral image's.
    """
    before, after, t = _labels_around_edit(p_neutral, p_edited, target, threshold, names)
    k = after.shape[2]
    cols = range(k) if attribute_indices is None else \
        {_index(j, k, names, "attribute_indices") for j in attribute_indices}
    others = sorted(set(cols) - {t})
    if not others:
        return np.zeros(after.shape[:2], dtype=bool)
    return (after[:, :, others] != before[:, :, others]).any(axis=2)


def no_non_target_flip_rate(p_neutral, p_edited, target, threshold: float = 0.5,
                            attribute_indices=None, names: Sequence[str] | None = None) -> float:
    """The share of edits in which NO non-target attribute's thresholded label changed.

    1.0 is best (every edit left the other labels alone); 1 - this is the rate of edits with a
    collateral flip. Each (seed, swap point) pair counts as one edit. Shapes as in
    ``non_target_flips``.
    """
    return float(1.0 - non_target_flips(p_neutral, p_edited, target, threshold,
                                        attribute_indices, names).mean())


def flips_by_attribute(p_neutral, p_edited, target, names: Sequence[str],
                       threshold: float = 0.5) -> dict[str, dict[str, float]]:
    """Which other attributes an edit flips, and which way: {name: {"on": share of edits that
    turned it on, "off": share that turned it off}} for every non-target column. Where the
    no-flip rate falls short, this says what to train or fix. Shapes as in ``non_target_flips``."""
    before, after, t = _labels_around_edit(p_neutral, p_edited, target, threshold, names)
    return {name: {"on": float((~before[..., j] & after[..., j]).mean()),
                   "off": float((before[..., j] & ~after[..., j]).mean())}
            for j, name in enumerate(names) if j != t}


# ----------------------------------------------------------------------------- image metrics

def _image(x, what: str) -> np.ndarray:
    """An HxWxC float image on [0, 1] (uint8 is divided by 255; HxW gets C = 1)."""
    raw = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    a = _array(raw, what)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3) or a.shape[0] < 1 or a.shape[1] < 1:
        raise MedEditError(f"{what}: expected an HxWx3 (or HxW) image, got shape {a.shape}")
    if raw.dtype == np.uint8:
        return a / 255.0
    if np.issubdtype(raw.dtype, np.integer) or raw.dtype == bool:
        raise MedEditError(f"{what}: integer images must be uint8, got {raw.dtype}")
    if a.min() < 0 or a.max() > 1:
        raise MedEditError(f"{what}: float images must lie in [0, 1], got range "
                           f"[{a.min():.3g}, {a.max():.3g}]")
    return a


def _pair(a, b, what_a: str, what_b: str):
    x, y = _image(a, what_a), _image(b, what_b)
    if x.shape != y.shape:
        raise MedEditError(f"{what_a} {x.shape} and {what_b} {y.shape} differ in shape")
    return x, y


def _mask(mask, shape_hw, what: str = "mask") -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask)
    if m.dtype != bool:
        if not np.issubdtype(m.dtype, np.number) or not np.all((m == 0) | (m == 1)):
            raise MedEditError(f"{what}: expected an HxW bool (or 0/1) mask")
        m = m.astype(bool)
    if m.shape != tuple(shape_hw):
        raise MedEditError(f"{what}: shape {m.shape} does not match the image's {tuple(shape_hw)}")
    return m


def edit_footprint(neutral, edited, threshold: float = EDIT_FOOTPRINT) -> np.ndarray:
    """HxW bool, True where the edit changed a pixel visibly: by more than ``threshold`` in some channel."""
    x, y = _pair(neutral, edited, "neutral", "edited")
    # A change of exactly the threshold stays outside, whatever the float rounding of x - y.
    return np.abs(x - y).max(-1) > threshold + 1e-9


def _psnr(mse: float, max_db: float) -> float:
    if mse <= 0:
        return float(max_db)
    return float(min(max_db, 10.0 * np.log10(1.0 / mse)))


def psnr_outside(neutral, edited, mask=None, max_db: float = PSNR_MAX_DB) -> float:
    """PSNR (dB, data range 1) between two images over the pixels OUTSIDE the target's mask.

    neutral, edited: HxWx3 (or HxW) uint8 or float in [0, 1], same shape.
    mask: HxW bool, True on the target factor's pixels (excluded); None compares the whole image.
    The MSE averages all channels of the kept pixels. Identical kept pixels give infinite PSNR,
    reported as ``max_db`` (100 dB); finite values are capped there too.
    """
    x, y = _pair(neutral, edited, "neutral", "edited")
    m = _mask(mask, x.shape[:2])
    keep = np.ones(x.shape[:2], bool) if m is None else ~m
    if not keep.any():
        raise MedEditError("mask: covers the whole image; nothing is left outside it to compare")
    return _psnr(float(((x - y)[keep] ** 2).mean()), max_db)


def ssim_map(x, y) -> np.ndarray:
    """The SSIM map (Wang et al. 2004) of two HxW float arrays on [0, 1].

    Gaussian window sigma 1.5 truncated to 11 x 11 (radius 5), K1 = 0.01, K2 = 0.03, data range 1,
    population (not sample) variances, reflected borders. Returns an HxW array.
    """
    c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2
    truncate = SSIM_RADIUS / SSIM_SIGMA  # makes scipy's kernel radius exactly 5

    def blur(a):
        return ndimage.gaussian_filter(a, SSIM_SIGMA, truncate=truncate, mode="reflect")

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def ssim_outside(neutral, edited, mask=None, on: str = "channels") -> float:
    """Mean SSIM over the pixels whose whole SSIM window lies outside the target's mask.

    neutral, edited: HxWx3 (or HxW) uint8 or float in [0, 1], same shape.
    mask: HxW bool, True on the target factor's pixels; None keeps every pixel.
    on: "channels" averages the per-channel SSIM maps; "luminance" uses one map of BT.601 luma.
    Pixels kept: the mask is dilated by the window radius (5 px, an 11 x 11 square, the window's
    support) so no kept window sees a target pixel, and the 5-px image border is dropped as in the
    reference implementation (its windows are padded). Identical images give exactly 1.
    Raises MedEditError when no pixel is left.
    """
    x, y = _pair(neutral, edited, "neutral", "edited")
    if on == "luminance":
        if x.shape[2] == 3:
            x, y = x @ LUMA, y @ LUMA
        else:
            x, y = x[:, :, 0], y[:, :, 0]
        smap = ssim_map(x, y)
    elif on == "channels":
        smap = np.mean([ssim_map(x[:, :, c], y[:, :, c]) for c in range(x.shape[2])], axis=0)
    else:
        raise MedEditError(f"on: choose 'channels' or 'luminance', got {on!r}")
    h, w = smap.shape
    keep = np.zeros((h, w), bool)
    r = SSIM_RADIUS
    keep[r:h - r, r:w - r] = True
    m = _mask(mask, (h, w))
    if m is not None and m.any():
        keep &= ~ndimage.binary_dilation(m, structure=np.ones((SSIM_WINDOW, SSIM_WINDOW), bool))
    if not keep.any():
        raise MedEditError(f"no pixel left for SSIM: the image ({h}x{w}) is too small or the mask, "
                           f"dilated by {r} px, covers all of it")
    return float(smap[keep].mean())
