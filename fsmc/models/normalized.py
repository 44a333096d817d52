"""The self-contained classifier every registered model is: normalisation inside.

A user passes float images in [0, 1], N x C x H x W, and gets logits; the mean
and std the network was trained with travel with the weights as buffers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class NormalizedClassifier(nn.Module):
    """``net((x - mean) / std)`` with per-channel ``mean`` and ``std`` buffers."""

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)

    @property
    def classifier(self) -> nn.Module:
        """The final linear layer (never pruned: its outputs are the classes)."""
        return self.net.classifier

    @property
    def pooled_head(self) -> nn.Module:
        """Everything between global pooling and the logits (the net decides)."""
        return self.net.pooled_head

    def pruning_ignored_layers(self) -> list[nn.Module]:
        """Layers whose output channels structured pruning must keep (the net decides)."""
        return self.net.pruning_ignored_layers()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The net's feature map before global pooling, for normalised input."""
        return self.net.forward_features((x - self.mean) / self.std)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """The net's logits from a feature map of :meth:`forward_features`."""
        return self.net.forward_head(features)
