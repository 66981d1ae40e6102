"""The Gradio app of MedEdit: layout (ui.py), input/result handling (handlers.py), ready edits (examples.py)."""
