"""Training: `python -m pipelines train vae|dit|classifier|lora`.

Each trainer (vae.py, dit.py, classifier.py, lora.py) builds its data and models and hands its loss
to the one shared loop (loop.py: seeded draws, schedules from schedules.py, AdamW, EMA, gradients
averaged over processes, checkpoints.py through accelerate, hardware.py for the device). Options
and their checks live in options.py and checks.py, which need no torch. Phantom training sets are
in data.py (dit_data.py for the DiT's latents and loss masks, priors.py for the alignment targets);
Med-Art's colour loss for LoRA in hldf.py; what a trained model records in records.py.
"""
