"""A user's torchvision classifier as a zoo net: backbone, global pooling, head.

fsmc's recovery needs three things of a network: the feature map before global
pooling (mir mimics it, the OOD plug-in distils through it), the head that turns
it into logits, and the final linear layer (its outputs are the classes; channel
pruning keeps it). torchvision's classification families all have this shape;
:data:`TORCHVISION_FAMILIES` says, per family, which attribute is the backbone
and which the head. The state-dict keys under ``model.`` are torchvision's own,
so a user's ``model.state_dict()`` loads unchanged.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from fsmc.config import TORCHVISION_TEACHERS
from fsmc.errors import FsmcError
from fsmc.models.base import ClassifierNet


def _family(name: str) -> str:
    for family in ("resnet", "mobilenet", "efficientnet"):
        if name.startswith(family):
            return family
    raise FsmcError(f"torchvision architecture {name!r} is not supported; valid: {', '.join(TORCHVISION_TEACHERS)}.")


class TorchvisionClassifier(ClassifierNet):
    """``torchvision.models.get_model(name, num_classes=...)`` split into features and head.

    Args:
        name: a torchvision classification architecture of :data:`fsmc.config.TORCHVISION_TEACHERS`.
        num_classes: logits of the final linear layer.
    """

    def __init__(self, name: str, num_classes: int):
        super().__init__()
        if name not in TORCHVISION_TEACHERS:
            raise FsmcError(f"torchvision architecture {name!r} is not supported; valid: {', '.join(TORCHVISION_TEACHERS)}.")
        self.family = _family(name)
        self.model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)

    @property
    def classifier(self) -> nn.Linear:
        """The final linear layer (resnets: ``fc``; mobilenets and efficientnets: the last of ``classifier``)."""
        if self.family == "resnet":
            return self.model.fc
        return self.model.classifier[-1]

    @property
    def pooled_head(self) -> nn.Module:
        """Everything after global pooling: ``fc``, or the family's ``classifier`` (an MLP in MobileNetV3)."""
        return self.model.fc if self.family == "resnet" else self.model.classifier

    def pruning_ignored_layers(self) -> list[nn.Module]:
        """The head's linear layers and the last conv of the backbone: the feature width and the head stay the
        teacher's, so the teacher's head fits the student (mir) and the pre-pool maps of both can be compared."""
        last_conv = [m for m in self.backbone_modules() if isinstance(m, nn.Conv2d)][-1]
        return [m for m in self.pooled_head.modules() if isinstance(m, nn.Linear)] + [last_conv]

    def backbone_modules(self) -> list[nn.Module]:
        """Every module of the backbone, in definition order."""
        if self.family == "resnet":
            m = self.model
            return [mod for part in (m.conv1, m.bn1, m.layer1, m.layer2, m.layer3, m.layer4) for mod in part.modules()]
        return list(self.model.features.modules())

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before global pooling."""
        m = self.model
        if self.family == "resnet":
            x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
            return m.layer4(m.layer3(m.layer2(m.layer1(x))))
        return m.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Global average pooling, then the head (linear, or the family's small MLP)."""
        pooled = torch.flatten(nn.functional.adaptive_avg_pool2d(features, 1), 1)
        return self.model.fc(pooled) if self.family == "resnet" else self.model.classifier(pooled)
