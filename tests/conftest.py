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
