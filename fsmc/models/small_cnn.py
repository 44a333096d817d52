"""A small CNN teacher for the embedded digits data (8x8 grayscale)."""

from __future__ import annotations

import torch
from torch import nn

from fsmc.models.base import ClassifierNet


class SmallCNN(ClassifierNet):
    """conv-bn-relu x2, 2x2 max-pool, conv-bn-relu, global average pool, linear.

    Args:
        in_channels: image channels (1 for digits).
        num_classes: number of output logits.
        widths: output channels of the three conv blocks.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths: tuple[int, int, int] = (32, 64, 64)):
        super().__init__()
        w1, w2, w3 = widths
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w1, 3, padding=1, bias=False),
            nn.BatchNorm2d(w1),
            nn.ReLU(inplace=True),
            nn.Conv2d(w1, w2, 3, padding=1, bias=False),
            nn.BatchNorm2d(w2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(w2, w3, 3, padding=1, bias=False),
            nn.BatchNorm2d(w3),
            nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w3, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before global pooling."""
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Global average pooling, then the linear classifier."""
        return self.fc(torch.flatten(self.pool(features), 1))

    def pruning_ignored_layers(self) -> list[nn.Module]:
        """The classifier and the last conv: the feature width stays the teacher's, as MiR's pruning keeps
        block outputs, so the teacher's head fits the student's features (mir) and the last conv has a
        teacher counterpart of the same shape (fskd, cd)."""
        return [self.fc, self.features[-3]]
