"""What the evaluator draws and how many at once: a tuning range and a reporting range of phantom
seeds that never meet, the seed counts, the batch size. Light (no torch), so the command line
checks its values against these before anything loads.

Settings (guidance, swap point, locality, fine-tune recipes) are chosen by looking at figures from
the tuning range; the figures a model card reports come from the reporting range, which no choice
has looked at. Each attribute owns a block of MAX_SEEDS seeds in each range, at its place in the
registry: rows never share seeds whatever `--seeds` is, and a row's seeds do not depend on which
other rows are evaluated. The independent phantoms FID and KID compare against (the reference) have
blocks of their own in each range. Training draws seeds below 10,000,000.
"""

from pipelines.core.errors import MedEditError
from pipelines.data.attributes import ATTRIBUTE_NAMES, ATTRIBUTES, MODALITIES, check_modality, get_attribute

SEED_RANGES = {"tuning": 20_000_000, "reporting": 30_000_000}  # each 10,000,000 wide
DEFAULT_RANGE = "reporting"
DEFAULT_SEEDS = 200  # per attribute
MAX_SEEDS = 100_000  # per attribute; a row's block
REFERENCE_OFFSET = 5_000_000  # the reference phantoms' blocks, past every row's
BATCH = 25  # seeds sampled together
BATCH_RANGE = (1, 1024)


def _first(seed_range: str, attribute: str) -> int:
    if seed_range not in SEED_RANGES:
        raise MedEditError(f"seed range {seed_range!r}: choose one of {', '.join(SEED_RANGES)}")
    if attribute not in ATTRIBUTE_NAMES:
        raise MedEditError(f"unknown attribute {attribute!r}; choose one of: {', '.join(ATTRIBUTE_NAMES)}")
    return SEED_RANGES[seed_range] + MAX_SEEDS * ATTRIBUTE_NAMES.index(attribute)


def _check_count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SEEDS:
        raise MedEditError(f"seeds per attribute must be a whole number from 1 to {MAX_SEEDS}, got {n!r}")
    return n


def row_seeds(seed_range: str, attribute: str, n: int) -> list[int]:
    """The n seeds an attribute's row is evaluated on."""
    first = _first(seed_range, attribute)
    return list(range(first, first + _check_count(n)))


def reference_seeds(seed_range: str, attribute: str, n: int) -> list[int]:
    """n seeds of independent phantoms for the row's FID / KID reference set."""
    first = _first(seed_range, attribute) + REFERENCE_OFFSET
    return list(range(first, first + _check_count(n)))


def evaluation_jobs(modalities=MODALITIES, attributes=None) -> list[tuple[str, str]]:
    """The (modality, attribute) rows to evaluate, in registry order; every name is checked, so a
    typo fails before any model loads."""
    for modality in modalities:
        check_modality(modality)
    for name in attributes or ():
        if get_attribute(name).modality not in modalities:
            raise MedEditError(f"attribute {name!r} belongs to {get_attribute(name).modality}, "
                               f"which is not evaluated (modalities: {', '.join(modalities)})")
    jobs = [(a.modality, a.name) for a in ATTRIBUTES
            if a.modality in modalities and (attributes is None or a.name in attributes)]
    if not jobs:
        raise MedEditError("nothing to evaluate: choose at least one modality and attribute")
    return jobs
