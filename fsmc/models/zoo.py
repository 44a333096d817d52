"""Teacher architectures by name, and the builder specs stored in checkpoints."""

from __future__ import annotations

from typing import Any

from torch import nn

from fsmc.errors import FsmcError
from fsmc.models.cifar_resnet import CifarResNet
from fsmc.models.factory_net import FactoryClassifier
from fsmc.models.normalized import NormalizedClassifier
from fsmc.models.small_cnn import SmallCNN
from fsmc.models.timm_net import TimmClassifier
from fsmc.models.torchvision_net import TorchvisionClassifier
from fsmc.models.trusted_pickle import PickledClassifier
from fsmc.models.vgg import CifarVGG

ARCHITECTURES = {
    "small-cnn": SmallCNN,
    "cifar-resnet": CifarResNet,
    "cifar-vgg16-bn": CifarVGG,
    "torchvision": TorchvisionClassifier,
    "module": FactoryClassifier,  # a user's own network, rebuilt by their factory function
    "timm": TimmClassifier,  # timm.create_model(name), without downloaded weights (timm is optional)
    "pickled": PickledClassifier,  # a registry module the user trusts (teacher.trust_pickle), by its sha256
}


def build(spec: dict[str, Any]) -> NormalizedClassifier:
    """Build an (unpruned, untrained) model from a spec ``{"arch", "kwargs", "mean", "std"}``."""
    arch = spec.get("arch")
    if arch not in ARCHITECTURES:
        raise FsmcError(f"Unknown architecture {arch!r} in checkpoint; known: {', '.join(ARCHITECTURES)}.")
    net: nn.Module = ARCHITECTURES[arch](**spec.get("kwargs", {}))
    return NormalizedClassifier(net, spec["mean"], spec["std"])


def trained_here_spec(teacher: str, in_channels: int, num_classes: int, mean: list[float], std: list[float]) -> dict[str, Any]:
    """The builder spec of a named teacher."""
    if teacher in ("digits-cnn", "small-cnn"):
        return {
            "arch": "small-cnn",
            "kwargs": {"in_channels": in_channels, "num_classes": num_classes},
            "mean": mean,
            "std": std,
        }
    raise FsmcError(f"Unknown teacher {teacher!r} to train here; valid: digits-cnn, small-cnn.")
