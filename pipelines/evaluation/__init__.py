"""Measuring: the attribute classifier, the metrics, the evaluator behind `eval`, and the
benchmark behind `bench`."""
