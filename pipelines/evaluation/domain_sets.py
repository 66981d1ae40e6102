"""The images the domain check is measured on, built at run time: nothing here was fitted on.

    sets = domain_sets(n_in=100, n_near=40, n_noise=20)    # {"in": [...], "near": [...], "known": [...], "out": [...]}
    each item: Case(group, name, pixels [H, W, 3] uint8)

- "out": images of no modality the phantom model knows, from files that ship with installed
  packages (pydicom's test DICOMs of every modality it has, read through the upload path; the
  photographs shipped with gradio and scikit-learn; scipy's and networkx's test figures), and
  generated ones (noise, flat fields, gradients, checkerboards, text renders).
- "near": phantoms changed the way a wrong upload would be (upside down, mirrored, inverted,
  heavily cropped): the hard cases, reported apart; and the way another scanner or viewer shows
  the same modality (turned by 3-5 degrees, contrast changed by a third): real-looking variations
  the check should warn about, not refuse.
- "known": the same modality, shifted far (KNOWN_VARIANTS: contrast x0.5 or x0.4, gamma, a turn
  of 10-15 degrees, blur, a crop, a 32-px source, histogram equalization), as a real image of a
  known modality may differ from the phantoms: to be warned about (or edited), not refused.
  fit-domain tunes `refuse` on other phantoms shifted by the same kinds (domain_far.py; all but
  equalization, which no fit or tuning image had) at random strengths; these are fresh phantoms at
  fixed strengths.
- Out-of-domain files are split in two by a hash of their names, and generated ones drawn from two
  seeds: the "tuning" half chooses the refusal limit (domain_fit.py), the "held_out" half measures
  it (domain_eval.py); no file is in both.
- "in": fresh phantoms (DOMAIN_TEST_SEEDS: never drawn by training, fitting or the evaluator) as
  uploads arrive: clean, JPEG at quality 40, Gaussian noise sigma 8, rescaled, rendered at 128 and
  256 px.
"""

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipelines.core.errors import MedEditError
from pipelines.data.attributes import MODALITIES
from pipelines.data.phantoms import phantom
from pipelines.evaluation.domain_far import EQUALIZED, far_variant

DOMAIN_TEST_SEEDS = 40_000_000  # past the evaluator's ranges (20M, 30M) and training's (< 10M)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Packages whose wheels carry photographs or figures (none is a medical image of these modalities).
IMAGE_PACKAGES = {"gradio": ("media_assets/images", "test_data"), "sklearn": ("datasets/images",),
                  "scipy": ("ndimage/tests",), "networkx": ("drawing/tests/baseline",)}
IN_VARIANTS = ("clean", "jpeg40", "noise8", "rescaled", "render128", "render256")
NEAR_VARIANTS = ("upside_down", "mirrored", "inverted", "cropped", "turned", "contrast")
SHIFTED_VARIANTS = ("turned", "contrast")  # of NEAR_VARIANTS: the same modality as another source shows it
# name -> (far kind, strength): the same modality, far from the phantoms (domain_far.py)
KNOWN_VARIANTS = {"contrast_x0.5": ("contrast", 0.5), "contrast_x0.4": ("contrast", 0.4),
                  "contrast_x1.75": ("contrast", 1.75), "gamma_0.5": ("gamma", 0.5), "gamma_2": ("gamma", 2.0),
                  "turned_10": ("turned", 10.0), "turned_15": ("turned", -15.0), "blurred_2.5": ("blurred", 2.5),
                  "cropped_0.7": ("cropped", 0.7), "resampled_32": ("resampled", 32), "equalized": (EQUALIZED, 0.0)}
SPLITS = ("tuning", "held_out")
GENERATED_SEEDS = {"tuning": 1, "held_out": 0}
NEAR_COPY = 4.0  # grey levels: thumbnails this close are one image in two files


@dataclass
class Case:
    group: str  # "in", "near" or "out"
    name: str  # what it is, e.g. "dicom:CT", "photo:cheetah.jpg", "in:jpeg40"
    pixels: np.ndarray  # [H, W, 3] uint8


# --- in the model's world -----------------------------------------------------------------------

def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def noisy(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).round().astype(np.uint8)


def resized(image: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))


def in_domain_variant(image128: np.ndarray, variant: str, modality: str, seed: int,
                      rng: np.random.Generator) -> np.ndarray:
    """A phantom (rendered at 128 px) as it might arrive."""
    if variant == "clean":
        return image128
    if variant == "jpeg40":
        return jpeg(image128, 40)
    if variant == "noise8":
        return noisy(image128, 8.0, rng)
    if variant == "rescaled":
        return resized(image128, int(rng.integers(90, 400)))
    if variant == "render128":
        return phantom(modality, seed, size=128).image
    if variant == "render256":
        return phantom(modality, seed, size=256).image
    raise MedEditError(f"unknown in-domain variant {variant!r}")


def in_domain(n: int, first_seed: int = DOMAIN_TEST_SEEDS) -> list[Case]:
    """n fresh phantoms, the modalities and variants taking turns."""
    rng = np.random.default_rng(first_seed)
    cases = []
    for i in range(n):
        modality, variant = MODALITIES[i % 2], IN_VARIANTS[(i // 2) % len(IN_VARIANTS)]
        seed = first_seed + i
        image = phantom(modality, seed, size=128).image if variant not in ("render128", "render256") else None
        pixels = in_domain_variant(image, variant, modality, seed, rng)
        cases.append(Case("in", f"in:{variant}", pixels))
    return cases


# --- near the model's world: phantoms no upload of these modalities looks like -------------------

def near_variant(image: np.ndarray, variant: str, rng: np.random.Generator | None = None) -> np.ndarray:
    if variant == "upside_down":
        return np.ascontiguousarray(image[::-1])
    if variant == "mirrored":
        return np.ascontiguousarray(image[:, ::-1])
    if variant == "inverted":
        return 255 - image
    if variant == "cropped":  # a quarter of the width, from the middle
        size = image.shape[0]
        return np.ascontiguousarray(image[size * 3 // 8: size * 5 // 8, size * 3 // 8: size * 5 // 8])
    if variant == "turned":  # 3 to 5 degrees either way, the corners filled with the border's colour
        rng = rng or np.random.default_rng(0)
        angle = rng.uniform(3, 5) * rng.choice((-1, 1))
        fill = tuple(int(v) for v in image[0, 0])
        return np.asarray(Image.fromarray(image).rotate(angle, Image.Resampling.BILINEAR, fillcolor=fill))
    if variant == "contrast":  # around the mean, by a third down or up
        rng = rng or np.random.default_rng(0)
        factor = (0.67, 1.33)[int(rng.integers(2))]
        mean = image.mean()
        return np.clip((image - mean) * factor + mean, 0, 255).round().astype(np.uint8)
    raise MedEditError(f"unknown near-domain variant {variant!r}")


def near_domain(n: int, first_seed: int = DOMAIN_TEST_SEEDS + 1_000_000) -> list[Case]:
    rng = np.random.default_rng(first_seed)
    cases = []
    for i in range(n):
        modality, variant = MODALITIES[i % 2], NEAR_VARIANTS[(i // 2) % len(NEAR_VARIANTS)]
        image = phantom(modality, first_seed + i, size=128).image
        cases.append(Case("near", f"near:{modality}:{variant}", near_variant(image, variant, rng)))
    return cases


def known_modality(n: int, first_seed: int = DOMAIN_TEST_SEEDS + 2_000_000) -> list[Case]:
    """n fresh phantoms far shifted, the modalities and KNOWN_VARIANTS taking turns."""
    rng = np.random.default_rng(first_seed)
    names, cases = list(KNOWN_VARIANTS), []
    for i in range(n):
        modality, name = MODALITIES[i % 2], names[(i // 2) % len(names)]
        image = phantom(modality, first_seed + i, size=128).image
        cases.append(Case("known", f"known:{modality}:{name}", far_variant(image, *KNOWN_VARIANTS[name], rng)))
    return cases


# --- out of it -----------------------------------------------------------------------------------

def dicom_cases() -> list[Case]:
    """pydicom's test files on disk that the upload path reads (the others: no pixels, or compressed in a
    syntax no installed decoder reads), named by their Modality."""
    import pydicom
    from pydicom.data.data_manager import DATA_ROOT  # the files on disk (get_testdata_files downloads more)

    from pipelines.data.uploads import read_image

    cases = []
    for path in sorted(Path(DATA_ROOT, "test_files").rglob("*")):
        if not path.is_file() or path.suffix not in ("", ".dcm"):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pixels = read_image(path, allow_burned_in=True).pixels  # ultrasound would be refused as such
                modality = pydicom.dcmread(path, stop_before_pixels=True).get("Modality", "") or "?"
        except (MedEditError, Exception):  # noqa: BLE001 - a test file the upload path refuses is not a case
            continue
        if pixels.shape[0] >= 16 and pixels.shape[1] >= 16 and pixels.std() > 0:
            cases.append(Case("out", f"dicom:{modality}:{Path(path).name}", pixels))
    return cases


def package_images() -> list[Case]:
    """Photographs and figures that ship inside installed packages."""
    import importlib.util

    cases = []
    for package, folders in IMAGE_PACKAGES.items():
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(list(spec.submodule_search_locations)[0])
        for folder in folders:
            for path in sorted((root / folder).glob("*")):
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                try:
                    with Image.open(path) as image:
                        rgba = image.convert("RGBA")
                except OSError:
                    continue
                if min(rgba.size) < 16:
                    continue
                a = np.asarray(rgba).astype(np.float64)  # transparency onto white, as a viewer shows it
                rgb = a[..., :3] * a[..., 3:] / 255 + 255 * (1 - a[..., 3:] / 255)
                cases.append(Case("out", f"photo:{package}:{path.name}", rgb.round().astype(np.uint8)))
    return cases


def text_render(text: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A page of text, black on white (a scanned document, a screenshot of a report)."""
    page = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=int(rng.integers(10, 24)))
    y = int(rng.integers(2, 12))
    while y < size:
        draw.text((int(rng.integers(2, 12)), y), text, fill=int(rng.integers(0, 80)), font=font)
        y += int(rng.integers(14, 30))
    return np.asarray(page.convert("RGB"))


def generated(n: int, seed: int = 0) -> list[Case]:
    """Noise, flat fields, gradients, checkerboards and text renders, n of each."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        size = int(rng.integers(64, 300))
        cases.append(Case("out", "noise:uniform", rng.integers(0, 256, (size, size, 3), dtype=np.uint8)))
        grey = np.clip(rng.normal(rng.uniform(60, 200), rng.uniform(10, 60), (size, size)), 0, 255)
        cases.append(Case("out", "noise:grey", np.repeat(grey[..., None], 3, 2).round().astype(np.uint8)))
        cases.append(Case("out", "flat", np.full((size, size, 3), rng.integers(0, 256, 3), dtype=np.uint8)))
        ramp = np.linspace(rng.uniform(0, 128), rng.uniform(128, 255), size)
        ramp = ramp[None, :] if i % 2 else ramp[:, None]
        cases.append(Case("out", "gradient", np.repeat(np.broadcast_to(ramp, (size, size))[..., None], 3, 2)
                          .round().astype(np.uint8)))
        cell = int(rng.integers(4, 32))
        board = ((np.arange(size)[:, None] // cell + np.arange(size)[None, :] // cell) % 2) * 255
        cases.append(Case("out", "checkerboard", np.repeat(board[..., None], 3, 2).astype(np.uint8)))
        words = ("Patient report: findings within normal limits.", "INVOICE 2024-113 total due",
                 "The quick brown fox jumps over the lazy dog.")
        cases.append(Case("out", "text", text_render(words[i % len(words)], size, rng)))
    return cases


def thumbnail(pixels: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(pixels).convert("L").resize((16, 16), Image.Resampling.BOX), np.float64)


def split_of(pixels: np.ndarray) -> str:
    """"tuning" or "held_out" for a packaged image, by a hash of its coarse thumbnail (16 x 16
    grey, 8 levels)."""
    coarse = (thumbnail(pixels).astype(np.uint8) >> 5).astype(np.uint8)
    return SPLITS[hashlib.sha256(coarse.tobytes()).digest()[0] % 2]


def splits(cases: list[Case]) -> list[str]:
    """Each case's half; a near copy of an earlier case (its thumbnail within NEAR_COPY grey
    levels on average: pydicom ships one image in several transfer syntaxes, some lossy) goes
    where that case went, so the halves share no image."""
    thumbs, halves = [thumbnail(c.pixels) for c in cases], []
    for i, case in enumerate(cases):
        copy = next((j for j in range(i) if np.abs(thumbs[i] - thumbs[j]).mean() < NEAR_COPY), None)
        halves.append(split_of(case.pixels) if copy is None else halves[copy])
    return halves


def out_of_domain(n_generated: int, split: str = "held_out", medical: bool = True) -> list[Case]:
    """One half of the packaged out-of-domain files (without pydicom's unless `medical`: a model
    of one's own may know CT or MR) and n_generated of each generated kind, from that half's seed."""
    if split not in SPLITS:
        raise MedEditError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    packaged = (dicom_cases() if medical else []) + package_images()
    chosen = [c for c, half in zip(packaged, splits(packaged)) if half == split]
    return chosen + generated(n_generated, GENERATED_SEEDS[split])


def domain_sets(n_in: int, n_near: int, n_generated: int) -> dict[str, list[Case]]:
    """The four groups: n_in in-domain uploads, n_near hard cases, as many far-shifted phantoms of
    a known modality, the held-out half of the packaged out-of-domain files with n_generated of
    each generated kind."""
    return {"in": in_domain(n_in), "near": near_domain(n_near), "known": known_modality(n_near),
            "out": out_of_domain(n_generated, "held_out")}
