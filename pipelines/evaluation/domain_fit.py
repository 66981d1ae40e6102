"""Fit a model's domain statistics (domain.py) on the images it was trained on.

    stats = fit_domain(classifier, phantom_sets(6000, 2000))          # the phantom models
    stats = fit_domain(classifier, folder_sets("data/mine", 6000, 2000))  # a model trained on a dataset
    save_domain(model_folder, stats)                                     # domain.py

Four sets, all training images:
- `fit`: the Gaussians' means and covariances (shrunk toward a scaled identity: the features are
  many and correlated); a share of them (`augment`, default FIT_SHIFTED) shifted as below, so the
  Gaussians make room for what another scanner or viewer does to the same modality;
- `calibration`: other training images, as uploads arrive (JPEG, noise, rescaled), scored like
  any upload: each stage's scale and `flag` sit just above nearly all of them (FLAG_QUANTILE, with
  FLAG_MARGIN), since a fitted set is closer to its own Gaussian than new images are;
- `shifted`: calibration images changed the way the same modality from another source might be
  (contrast, brightness, gamma, blur, heavier noise, a slight zoom or turn), as the fit's share
  was: reported (how many are flagged); fitted without augmentation (`augment` 0) they scored as
  far as a CT slice does (contrast changed by a third, or a turn of 5 degrees: 3 to 10);
- `far`: other calibration images shifted further than any fit image was (domain_far.py: contrast
  x0.3-0.6 or x1.5-2, gamma, a turn of 6-15 degrees, blur, a crop, a low-resolution source): the
  near side of `refuse`, which domain_limits.py sets between them and the tuning half of the
  out-of-domain images (domain_sets.py; the held-out half is what `eval --domain` measures).

For the phantom models the sets are drawn from the renderer with training seeds (below
10,000,000); for a model trained on a dataset of its own (an adapter), from that dataset's images
(an imagefolder: every modality a Gaussian, the row's "modality" when it has one, else the one its
captions speak of). A model's images are fitted to its own size before the classifier reads them,
as its uploads are, and the phantoms are drawn at that size (128 px at least): a 256-px model is
fitted by the same command on its own folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from pipelines.core.errors import MedEditError
from pipelines.data.attributes import MODALITIES
from pipelines.data.phantom_size import RENDER_SIZE
from pipelines.evaluation.domain import DomainStats, domain_features
from pipelines.evaluation.domain_far import as_image, far_shifted
from pipelines.evaluation.domain_limits import refuse_limit
from pipelines.evaluation.domain_sets import jpeg, noisy, out_of_domain, resized

SHRINK = 0.01  # share of the mean variance added to every variance
FLAG_QUANTILE, FLAG_MARGIN = 0.999, 1.15
FIT_SHIFTED = 0.5  # share of the fit images shifted (another source's look): warned, not refused
TUNING_GENERATED = 10  # generated out-of-domain images of each kind in the tuning half
FIT_SEEDS = 0  # training seeds: the phantom models were trained below 10,000,000
CALIBRATION_SEEDS = 5_000_000


# --- how uploads of the training images arrive, and how other sources differ ---------------------

def as_uploaded(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A training image as it might be uploaded: as is, JPEG, noisy, or rescaled."""
    r = rng.random()
    if r < 0.25:
        return jpeg(image, int(rng.integers(30, 96)))
    if r < 0.5:
        return noisy(image, rng.uniform(0, 12), rng)
    if r < 0.75:
        return resized(image, int(rng.integers(64, 400)))
    return image


def shifted(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same modality from another source: other contrast, brightness, gamma, blur, noise, a
    slight zoom or turn (one or two of these, within what another scanner or viewer does)."""
    out = image.astype(np.float64)
    for kind in rng.choice(7, size=int(rng.integers(1, 3)), replace=False):
        if kind == 0:
            out = (out - out.mean()) * rng.uniform(0.75, 1.33) + out.mean()
        elif kind == 1:
            out = out + rng.uniform(-20, 20)
        elif kind == 2:
            out = 255 * (np.clip(out, 0, 255) / 255) ** rng.uniform(0.75, 1.33)
        elif kind == 3:
            out = np.asarray(as_image(out).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))).astype(np.float64)
        elif kind == 4:
            out = out + rng.normal(0, rng.uniform(5, 15), out.shape)
        elif kind == 5:  # zoom in, up to a tenth
            size = out.shape[0]
            keep = int(round(size * rng.uniform(0.9, 1.0)))
            top, left = rng.integers(0, size - keep + 1, 2)
            crop = as_image(out[top:top + keep, left:left + keep])
            out = np.asarray(crop.resize((size, size), Image.Resampling.BICUBIC)).astype(np.float64)
        else:  # a slight turn
            fill = tuple(int(v) for v in np.clip(out[0, 0], 0, 255))
            out = np.asarray(as_image(out).rotate(rng.uniform(-5, 5), Image.Resampling.BILINEAR,
                                                  fillcolor=fill)).astype(np.float64)
    return np.clip(out, 0, 255).round().astype(np.uint8)


def phantom_sets(n_fit: int, n_calibration: int, size: int = RENDER_SIZE, augment: float = FIT_SHIFTED) -> dict:
    """{"fit": (images, modalities), "calibration": ..., "shifted": ..., "far": ...} from the renderer's
    training seeds drawn at `size` (data/phantom_size.py: the model's, 128 at least), the modalities
    taking turns."""
    from pipelines.data.phantoms import phantom

    def draw(first: int, n: int, change) -> tuple[list, list]:
        rng = np.random.default_rng(first)
        images, modalities = [], []
        for i in range(n):
            modality = MODALITIES[i % len(MODALITIES)]
            images.append(change(phantom(modality, first + i, size=size).image, rng))
            modalities.append(modality)
        return images, modalities

    def fit_look(image, rng):  # a share `augment` as another source shows them
        return as_uploaded(shifted(image, rng) if rng.random() < augment else image, rng)

    return {"fit": draw(FIT_SEEDS, n_fit, fit_look),
            "calibration": draw(CALIBRATION_SEEDS, n_calibration, as_uploaded),
            "shifted": draw(CALIBRATION_SEEDS + n_calibration, n_calibration,
                            lambda image, rng: as_uploaded(shifted(image, rng), rng)),
            "far": draw(CALIBRATION_SEEDS + 2 * n_calibration, n_calibration,
                        lambda image, rng: as_uploaded(far_shifted(image, rng), rng))}


def folder_sets(folder, n_fit: int, n_calibration: int, seed: int = 0, augment: float = FIT_SHIFTED) -> dict:
    """The same four sets from an imagefolder dataset (metadata.jsonl): its rows shuffled, the
    first n_fit to fit, the next n_calibration to calibrate (and, shifted and far-shifted, the
    same images again)."""
    from pipelines.data.attributes import modality_of
    from pipelines.data.converters import validate_imagefolder
    from pipelines.data.uploads import read_image

    rows = validate_imagefolder(folder)
    order = np.random.default_rng(seed).permutation(len(rows))
    if len(rows) < 4:
        raise MedEditError(f"{folder} holds {len(rows)} images; fitting domain statistics needs at least 4")
    n_fit = min(n_fit, len(rows) // 2)
    chosen = {"fit": order[:n_fit], "calibration": order[n_fit:n_fit + n_calibration]}
    rng = np.random.default_rng(seed + 1)
    sets = {}
    for name, indices in chosen.items():
        images = [read_image(Path(folder) / rows[i]["file_name"]).pixels for i in indices]
        modalities = [rows[i].get("modality") or modality_of(rows[i]["anatomy"], rows[i]["style"]) for i in indices]
        shift = (lambda im: shifted(im, rng) if rng.random() < augment else im) if name == "fit" else (lambda im: im)
        sets[name] = ([as_uploaded(shift(im), rng) for im in images], modalities)
        if name == "calibration":
            sets["shifted"] = ([as_uploaded(shifted(im, rng), rng) for im in images], modalities)
            sets["far"] = ([as_uploaded(far_shifted(im, rng), rng) for im in images], modalities)
    return sets


# --- fitting ---------------------------------------------------------------------------------------

def gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and precision (inverse of the shrunk covariance)."""
    if len(features) < 2:
        raise MedEditError("a modality needs at least two images to fit its domain statistics")
    mean = features.mean(axis=0)
    covariance = np.cov(features, rowvar=False)
    covariance += SHRINK * np.trace(covariance) / len(mean) * np.eye(len(mean))
    return mean, np.linalg.inv(covariance)


def fit_domain(classifier, sets: dict, info: dict | None = None, image_size: int | None = None,
               outside: list | None = None) -> DomainStats:
    """Statistics from the four sets (each (images, modalities); images of any size). With
    `image_size` (the model's) each image is fitted to it first, as an upload is before the check
    reads it, then to the classifier's input. `outside`: the tuning out-of-domain images `refuse`
    is chosen against (default: the tuning half of domain_sets', pydicom's included)."""
    from pipelines.data.uploads import fit_pixels

    size = classifier.config.input_size

    def as_checked(image):
        image = np.asarray(image)
        return fit_pixels(fit_pixels(image, image_size)[0] if image_size else image, size)[0]

    if outside is None:
        outside = [case.pixels for case in out_of_domain(TUNING_GENERATED, "tuning")]
    features = {name: domain_features(classifier, [as_checked(im) for im in images])
                for name, (images, _) in {**sets, "outside": (outside, None)}.items()}
    labels = np.asarray(sets["fit"][1])
    modalities = list(dict.fromkeys(sets["fit"][1]))
    gaussians = {m: [gaussian(stage[labels == m]) for stage in features["fit"]] for m in modalities}
    stats = DomainStats({m: [g[0] for g in gaussians[m]] for m in modalities},
                        {m: [g[1] for g in gaussians[m]] for m in modalities},
                        scales=np.ones(len(features["fit"])), flag=0.0, refuse=0.0)
    # A stage's scale: what nearly no held-out training image passes at the nearest modality.
    stats.scales = np.quantile(stats.distances(features["calibration"]).min(axis=1), FLAG_QUANTILE, axis=0)
    calibration, _ = stats.scores(features["calibration"])
    near, _ = stats.scores(features["shifted"])
    far, _ = stats.scores(features["far"])
    stats.flag = float(np.quantile(calibration, FLAG_QUANTILE) * FLAG_MARGIN)
    stats.refuse, tuning = refuse_limit(stats.flag, far, stats.scores(features["outside"])[0], near)
    stats.info = {**(info or {}), "features": "per stage of the classifier, each channel's mean and std",
                  "images": {name: len(images) for name, (images, _) in sets.items()},
                  "refuse_chosen_on": tuning,
                  "calibration": {"flag_quantile": FLAG_QUANTILE, "flag_margin": FLAG_MARGIN,
                                  "calibration_flagged": float((calibration > stats.flag).mean()),
                                  "shifted_flagged": float((near > stats.flag).mean()),
                                  "shifted_refused": float((near > stats.refuse).mean())}}
    return stats
