"""MedEdit's pipeline layer: everything that computes. Never imports gradio."""
