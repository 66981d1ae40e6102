"""What the upload evaluation (evaluation/uploads.py) can be asked for. Light (no torch), so the
command line checks `eval --uploads` against these before anything loads."""

DIRECTIONS = ("add", "remove")  # the attribute drawn in the upload's counterfactual, or taken out
EDITS = ("prompts", "slider")  # the counterfactual's captions typed, or the attribute's slider at +-1
SEED_BLOCKS = 2  # a row draws its first n seeds for adding and the next n for removing
