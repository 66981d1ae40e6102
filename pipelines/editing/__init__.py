"""Editing: what a request may ask for, the sampling loop (two-scale guidance, the swap at a step),
the pipeline that caches the neutral run and branches edits off it, and Bezier interpolation."""
