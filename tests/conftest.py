import pytest
import torch

from tests.micro_model import save_micro_model

torch.set_num_threads(1)  # tests share 2 cores with everything else; results must not depend on it


@pytest.fixture(scope="session")
def micro_model_folder(tmp_path_factory):
    return save_micro_model(tmp_path_factory.mktemp("micro-model"))


@pytest.fixture(scope="session")
def micro_256_folder(tmp_path_factory):
    """The micro model at 256 px: the 256-px model's shapes (an f8 autoencoder, 32x32x8 latents,
    patch 4), random weights."""
    return save_micro_model(tmp_path_factory.mktemp("micro-256") / "micro-256", image_size=256)


@pytest.fixture(scope="session")
def other_model_folder(micro_model_folder, tmp_path_factory):
    """The micro model under another name with other sampling defaults: a second model to pick."""
    import dataclasses
    import shutil

    from pipelines.model.info import read_model_info, write_model_info
    folder = tmp_path_factory.mktemp("other-model") / "micro-other"
    shutil.copytree(micro_model_folder, folder)
    info = read_model_info(folder)
    defaults = {**info.defaults, "swap_at": 0.45, "locality": 0.0, "steps": 7}
    write_model_info(folder, dataclasses.replace(info, name="micro-other", defaults=defaults))
    return folder


@pytest.fixture(scope="session")
def micro_pipeline(micro_model_folder):
    from pipelines.editing.pipeline import MedEditPipeline
    from pipelines.model.loading import load_model
    return MedEditPipeline(load_model(str(micro_model_folder)))


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """A tiny random PixArt-alpha pipeline (T5 included), saved with save_pretrained."""
    from tests.tiny_pixart import save_tiny_pixart
    return save_tiny_pixart(tmp_path_factory.mktemp("tiny") / "pixart-alpha")


@pytest.fixture(scope="session")
def app_url(micro_model_folder, other_model_folder, micro_256_folder):
    """The whole app launched in-process on a free loopback port, serving the micro model (and
    two others to pick: other defaults, and 256 px)."""
    import os
    import socket

    previous = os.environ.get("MEDEDIT_MODEL")
    os.environ["MEDEDIT_MODEL"] = f"{micro_model_folder},{other_model_folder},{micro_256_folder}"
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
