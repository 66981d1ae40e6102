"""How close generated images lie to the phantoms as a distribution: FID and KID with their floor.

Both metrics come from torchmetrics, computed on the attribute classifier's pooled features (the
Inception network they default to needs weights that cannot be downloaded here, and a network
trained on these two modalities looks at what matters in them). Neither number means much alone:
both are biased at small sample sizes (FID upward), so every figure comes with its floor, the same
metric between two disjoint phantom sets of the same size and factor distribution: what a
generator indistinguishable from the renderer would score in the same run.

    distance = DistanceToPhantoms(model_classifier(model.domain_folder))   # the model's classifier
    distance.update(generated, phantoms, reference)   # per batch; three lists of HxWx3 uint8
    distance.compute()   # {"images", "fid", "fid_floor", "kid", "kid_std", "kid_floor", "kid_floor_std"}

`generated` and `phantoms` are both compared with `reference`; `phantoms` must be drawn like the
generated images (same factors) and `reference` independently of both.
"""

import warnings

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from pipelines.core.errors import MedEditError
from pipelines.evaluation.classifier import AttributeClassifier, prepare_images

KID_SUBSETS = 100  # torchmetrics' default
KID_SUBSET_SIZE = 1000  # torchmetrics' default; at most half the set, so subsets differ and
# the reported std says how much the figure moves with the draw
KID_SEED = 0  # KID draws its subsets from torch's global generator: seeded, on a forked state


class ClassifierFeatures(nn.Module):
    """torchmetrics' `feature` extractor: prepared images [B, 3, S, S] in [-1, 1] -> the
    classifier's globally pooled features [B, F], always computed in eval mode."""

    def __init__(self, classifier: AttributeClassifier):
        super().__init__()
        self.classifier = classifier
        self.num_features = classifier.feature_dim  # read by torchmetrics instead of a dummy pass

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        was_training = self.classifier.training
        self.classifier.eval()  # BatchNorm's running statistics, never the batch's
        try:
            return self.classifier.features(x)
        finally:
            self.classifier.train(was_training)


class DistanceToPhantoms:
    """FID and KID of generated images against reference phantoms, and of other phantoms against
    the same reference (the floor), fed batch by batch."""

    def __init__(self, classifier: AttributeClassifier):
        features = ClassifierFeatures(classifier)
        self.size = classifier.config.input_size
        self.images = 0
        with warnings.catch_warnings():  # KID keeps every feature: 128 floats an image here
            warnings.filterwarnings("ignore", message=".*will save all extracted features")
            self.metrics = {
                which: (FrechetInceptionDistance(feature=features),
                        KernelInceptionDistance(feature=features, subsets=KID_SUBSETS,
                                                subset_size=KID_SUBSET_SIZE))
                for which in ("generated", "phantoms")}

    def update(self, generated, phantoms, reference) -> None:
        """Three lists of HxWx3 uint8 images of equal length (any size: resized like the
        classifier's input)."""
        if not len(generated) == len(phantoms) == len(reference):
            raise MedEditError(f"distribution sets differ in size: {len(generated)} generated, "
                               f"{len(phantoms)} phantoms, {len(reference)} reference")
        prepared = {"generated": prepare_images(generated, self.size),
                    "phantoms": prepare_images(phantoms, self.size)}
        reference = prepare_images(reference, self.size)
        for which, pair in self.metrics.items():
            for metric in pair:
                metric.update(reference, real=True)
                metric.update(prepared[which], real=False)
        self.images += len(generated)

    def compute(self) -> dict:
        """{"images": per set, "fid", "fid_floor", "kid", "kid_std", "kid_floor", "kid_floor_std"};
        every figure None below two images per set (neither metric is defined there)."""
        out = {"images": self.images}
        for which, suffix in (("generated", ""), ("phantoms", "_floor")):
            fid, kid = self.metrics[which]
            if self.images < 2:
                out.update({f"fid{suffix}": None, f"kid{suffix}": None, f"kid{suffix}_std": None})
                continue
            kid.subset_size = min(KID_SUBSET_SIZE, max(2, self.images // 2))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(KID_SEED)
                kid_mean, kid_std = kid.compute()
            out.update({f"fid{suffix}": float(fid.compute()), f"kid{suffix}": float(kid_mean),
                        f"kid{suffix}_std": float(kid_std)})
        return out
