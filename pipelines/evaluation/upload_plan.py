"""What the upload evaluation (evaluation/uploads.py) can be asked for. Light (no torch), so the
command line checks `eval --uploads` against these before anything loads."""

from pipelines.core.errors import MedEditError

DIRECTIONS = ("add", "remove")  # the attribute drawn in the upload's counterfactual, or taken out
EDITS = ("prompts", "slider")  # the counterfactual's captions typed, or the attribute's slider at +-1
SEED_BLOCKS = 2  # a row draws its first n seeds for adding and the next n for removing


def checked_directions(directions, what: str = "directions") -> tuple[str, ...]:
    """`directions` as a tuple, each one of DIRECTIONS, at least one."""
    directions = tuple(directions)
    choose = f"choose one or both of {', '.join(DIRECTIONS)}"
    if not directions:
        raise MedEditError(f"{what}: none given; {choose}")
    for direction in directions:
        if direction not in DIRECTIONS:
            raise MedEditError(f"{what}: unknown direction {direction!r}; {choose}")
    return directions
