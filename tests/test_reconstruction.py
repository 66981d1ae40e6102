"""The autoencoder probe (pipelines/evaluation/reconstruction.py) on the shipped 64-px VAE."""

import numpy as np
from diffusers import AutoencoderKL

from pipelines.data.attributes import attributes_of
from pipelines.evaluation.classifier import load_classifier
from pipelines.evaluation.reconstruction import held_out_phantoms, reconstruction_report
from pipelines.model.embedded import EMBEDDED_FOLDER


def test_held_out_phantoms_are_fixed_and_labelled():
    images, labels = held_out_phantoms("dermoscopy", 3, 64)
    again, _ = held_out_phantoms("dermoscopy", 3, 64)
    assert images.shape == (3, 64, 64, 3) and images.dtype == np.uint8
    assert labels.shape == (3, len(attributes_of("dermoscopy")))
    assert np.array_equal(images, again)


def test_the_shipped_vae_keeps_the_phantoms_and_what_the_classifier_reads():
    vae = AutoencoderKL.from_pretrained(EMBEDDED_FOLDER / "vae").eval()
    report = reconstruction_report(vae, 64, n=4, classifier=load_classifier())
    for modality in ("dermoscopy", "cxr"):
        row = report[modality]
        assert 28 < row["psnr"] < 60, row
        assert row["accuracy_reconstructed"] >= row["accuracy_original"] - 0.1, row
