"""MedEdit's Gradio app: layout and events (ui.py, wiring.py), UI events (handlers.py), the named API
(api.py), client values to requests (inputs.py), what is held across requests (state.py), results as
shown and downloaded (outputs.py), errors as messages (errors.py), ready edits (examples.py)."""
