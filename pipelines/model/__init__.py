"""Models and how they are loaded: the embedded default, MedEdit folders, PixArt checkpoints from
the Hub or a folder, LoRA adapters, the HFFM projector, the text encoders, size presets, and the
mededit.json that describes a model."""
