"""Training of the embedded model's parts: `python -m pipelines train vae|dit|classifier|lora`."""
