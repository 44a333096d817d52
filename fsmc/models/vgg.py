"""VGG-16 with BatchNorm for 32x32 images (the CD / FSKD CIFAR setting: 512 -> 512 -> classes head)."""

from __future__ import annotations

import torch
from torch import nn

from fsmc.models.base import ClassifierNet

CONFIG_16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class CifarVGG(ClassifierNet):
    """VGG-16-BN: 13 conv-bn-relu layers, 5 max-pools, a 512-512-classes classifier."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in CONFIG_16:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=1, bias=False), nn.BatchNorm2d(item), nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True))
        self.fc = nn.Linear(512, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before flattening (1x1 after the last pool)."""
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """The hidden layer and the classifier on the flattened (1x1) feature map."""
        return self.fc(self.head(torch.flatten(features, 1)))
