"""MedEdit's Gradio app: `python app.py` (also what a Hugging Face Space runs).

PORT / GRADIO_SERVER_PORT pick the port (default 7860), GRADIO_SERVER_NAME the interface
(default 127.0.0.1; 0.0.0.0 in a container), MEDEDIT_MODEL the model(s) offered.
"""

import os

from app.ui import build_ui, launch_options

demo = build_ui()

if __name__ == "__main__":
    port = os.environ.get("PORT") or os.environ.get("GRADIO_SERVER_PORT") or "7860"
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), server_port=int(port),
                **launch_options())
