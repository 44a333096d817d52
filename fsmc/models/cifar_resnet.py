"""CIFAR ResNets of He et al. (2016): 3 stages of BasicBlocks, 16/32/64 channels, option-A shortcut.

Matches the layout of the public checkpoints of ``akamaster/pytorch_resnet_cifar10``
(``conv1``, ``bn1``, ``layer{1,2,3}.{i}.conv{1,2}``, ``bn{1,2}``, ``linear``), so
their state dicts load after stripping DataParallel's ``module.`` prefix. Depth
is 6n + 2: ResNet-20/32/44/56 have n = 3/5/7/9.

The option-A shortcut (stride-2 subsample, zero-padded channels) has no
parameters, which ties every block output of a stage to the same width:
structured pruning must leave block outputs alone and prune only the inner
channels (``conv1`` of each block), which :meth:`pruning_ignored_layers` says.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fsmc.models.base import ClassifierNet


class PadShortcut(nn.Module):
    """Option A: take every other pixel, zero-pad ``pad`` channels on each side.

    A module rather than the original ``LambdaLayer`` so the model pickles (MLflow).
    """

    def __init__(self, pad: int):
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    """conv3x3-bn-relu-conv3x3-bn, plus shortcut, relu."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = PadShortcut(planes // 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(ClassifierNet):
    """ResNet-(6n+2) for 32x32 images."""

    def __init__(self, depth: int = 56, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n + 2 (20, 32, 44, 56, ...), not {depth}")
        blocks = (depth - 2) // 6
        self.in_planes = 16
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._stage(16, blocks, 1)
        self.layer2 = self._stage(32, blocks, 2)
        self.layer3 = self._stage(64, blocks, 2)
        self.linear = nn.Linear(64, num_classes)

    def _stage(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for block_stride in [stride] + [1] * (blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, block_stride))
            self.in_planes = planes
        return nn.Sequential(*layers)

    @property
    def classifier(self) -> nn.Module:
        return self.linear

    def pruning_ignored_layers(self) -> list[nn.Module]:
        """Stem, every block's ``conv2`` (block outputs, tied by option A) and the classifier."""
        blocks = [b for stage in (self.layer1, self.layer2, self.layer3) for b in stage]
        return [self.conv1, self.linear, *(b.conv2 for b in blocks)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before global pooling (what MiR mimics)."""
        out = F.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(out)))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Global average pooling, then the linear classifier."""
        return self.linear(torch.flatten(F.adaptive_avg_pool2d(features, 1), 1))
