"""The size phantoms are drawn at for a model of `image_size` px: its own, 128 px at least, then
box-filtered down to it (thin strokes stay anti-aliased), as the trainers draw them
(pipelines/training/data.py). One rule for whoever draws phantoms for a model: the evaluators,
the autoencoder probe and the domain fit."""

RENDER_SIZE = 128


def render_size(image_size: int | None) -> int:
    return max(RENDER_SIZE, image_size or 0)
