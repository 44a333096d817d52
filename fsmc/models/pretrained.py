"""The teacher zoo: each pretrained teacher's architecture, weights file, sha256 and normalisation (no torch).

A table only, so that the command line checks a zoo teacher's weights file before it imports torch
(``fsmc.preflight``); loading lives in :mod:`fsmc.models.registry`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The normalisation the public CIFAR ResNets were trained with (ImageNet statistics, RGB in [0, 1]).
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
_AKAMASTER = "https://github.com/akamaster/pytorch_resnet_cifar10/raw/d5489e8995e81e91ce6b1d69dcc98ad579b0b153/pretrained_models/"


@dataclass(frozen=True)
class PretrainedTeacher:
    """One entry of the teacher zoo."""

    name: str
    arch: str
    kwargs: dict[str, Any]
    file: str  # relative to the model directory
    sha256: str
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))
    url: str | None = None
    recorded_test_acc: float | None = None  # on the JPEG-q75 CIFAR-10 test split (../shared/models/README.md)

    @property
    def spec(self) -> dict[str, Any]:
        return {"arch": self.arch, "kwargs": dict(self.kwargs), "mean": list(self.mean), "std": list(self.std)}


def _resnet(name: str, depth: int, file: str, sha: str, acc: float | None, url: bool = True) -> PretrainedTeacher:
    return PretrainedTeacher(
        name=name,
        arch="cifar-resnet",
        kwargs={"depth": depth, "num_classes": 10},
        file=file,
        sha256=sha,
        url=_AKAMASTER + Path(file).name if url else None,
        recorded_test_acc=acc,
    )


PRETRAINED = {
    t.name: t
    for t in (
        _resnet("resnet20", 20, "cifar10-resnet/resnet20-12fca82f.th", "12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8", 0.8103),
        _resnet("resnet32", 32, "cifar10-resnet/resnet32-d509ac18.th", "d509ac1820d7f25398913559d7e81a13229b1e7adc5648e3bfa5e22dc137f850", None),
        _resnet("resnet44", 44, "cifar10-resnet/resnet44-014dd654.th", "014dd6541728a1c700b1642ab640e211dc6eb8ed507d70697458dc8f8a0ae2e4", None),
        _resnet("resnet56", 56, "cifar10-resnet/resnet56-4bfd9763.th", "4bfd97631478d6b638d2764fd2baff3edb1d7d82252d54439343b6596b9b5367", 0.8320),
        # Adapted to the JPEG-q75 copy by fsmc's `teacher` stage recipe (3 epochs; ../shared/models/README.md).
        _resnet(
            "resnet20-jpeg", 20, "cifar10-jpeg/resnet20-249d1d06.pt", "249d1d06a2128e09ae6187b4582aa745a48ffc1e23d25a9c5b125540ae727f94", 0.8767, url=False
        ),
        _resnet(
            "resnet56-jpeg", 56, "cifar10-jpeg/resnet56-b51b123b.pt", "b51b123b1a051b8767e0bc7d5747f261d46d195c909333a99b5f5f722222d1f5", 0.8964, url=False
        ),
    )
}


def model_dir() -> Path:
    """``$FSMC_MODEL_DIR`` (set by ``--model-dir``), else ``~/.cache/fsmc/models``."""
    if explicit := os.environ.get("FSMC_MODEL_DIR"):
        return Path(explicit)
    from fsmc.cache import cache_dir

    return cache_dir() / "models"
