import pytest
import torch

from tests.micro_model import save_micro_model

torch.set_num_threads(1)  # tests share 2 cores with everything else; results must not depend on it


@pytest.fixture(scope="session")
def micro_model_folder(tmp_path_factory):
    return save_micro_model(tmp_path_factory.mktemp("micro-model"))


@pytest.fixture(scope="session")
def micro_pipeline(micro_model_folder):
    from pipelines.editing import MedEditPipeline
    from pipelines.loading import load_model
    return MedEditPipeline(load_model(str(micro_model_folder)))


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """A tiny random PixArt-alpha pipeline (T5 included), saved with save_pretrained."""
    from tests.tiny_pixart import save_tiny_pixart
    return save_tiny_pixart(tmp_path_factory.mktemp("tiny") / "pixart-alpha")


@pytest.fixture(scope="session")
def app_url(micro_model_folder):
    """The whole app launched in-process on a free loopback port, serving the micro model."""
    import os
    import socket

    previous = os.environ.get("MEDEDIT_MODEL")
    os.environ["MEDEDIT_MODEL"] = str(micro_model_folder)
    from app.ui import build_ui, launch_options
    demo = build_ui()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **launch_options())
    yield f"http://127.0.0.1:{port}/"
    demo.close()
    if previous is None:
        os.environ.pop("MEDEDIT_MODEL", None)
    else:
        os.environ["MEDEDIT_MODEL"] = previous
