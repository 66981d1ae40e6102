"""MedEdit's Gradio app: `python app.py` (also what a Hugging Face Space runs).

PORT / GRADIO_SERVER_PORT pick the port (default 7860), GRADIO_SERVER_NAME the interface
(default 127.0.0.1; 0.0.0.0 in a container), MEDEDIT_MODEL the model(s) offered; the server's
limits (work per request, time limit, queue) are in app/serving.py, each with its variable.
"""

import os
import sys

from app.shutdown import serve
from app.ui import build_ui, launch_options

demo = build_ui()

if __name__ == "__main__":
    port = os.environ.get("PORT") or os.environ.get("GRADIO_SERVER_PORT") or "7860"
    sys.exit(serve(demo, server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), server_port=int(port),
                   **launch_options()))
