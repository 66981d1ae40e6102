"""MedEdit's Gradio app (pipelines/ does every computation).

The page: controls.py (prompts, settings) beside displays.py (before/after, series, exports),
joined in ui.py through wiring.py (handlers meet components by name); handlers.py holds the UI's
events, api.py the named endpoints /generate /edit /series /export, examples.py the ready edits.
A request: inputs.py checks what the client sent, jobs.py runs it within serving.py's limits on
device.py's shared device, state.py holds models and results, outputs.py writes its files;
errors.py turns failures into messages; uploads.py (with upload_ledger.py), server_folders.py and
shutdown.py leave nothing behind, even after a kill.
"""
