"""One module per `python -m pipelines COMMAND`; each has `add_arguments(parser)` and `run(args)`."""

COMMANDS = {
    "phantoms": "Render procedural phantoms with captions, labels and masks (imagefolder layout).",
    "generate": "Sample one image from anatomy and style prompts.",
    "edit": "Neutral and edited image from one noise, swapping the prompts at --swap-at.",
    "series": "A Bezier series of frames from neutral to edited, with animation and manifest.",
    "train": "Train a model: vae, dit, classifier or lora.",
    "eval": "Measure edit quality: attribute accuracy, CFRT, preservation.",
    "bench": "Measure speed against the stock diffusers pipeline.",
    "convert": "Convert CheXpert, ISIC 2019 or a generic CSV into an imagefolder dataset.",
    "synthesize": "Write an imagefolder dataset of generated images from a spec (augmentation).",
}
