"""What every classifier net in the zoo offers the pipeline: a head, a feature map, pruning limits."""

from __future__ import annotations

import torch
from torch import nn


class ClassifierNet(nn.Module):
    """Base of the zoo's nets: ``forward_features`` (map before global pooling) and a linear head ``fc``."""

    fc: nn.Linear

    @property
    def classifier(self) -> nn.Module:
        """The final linear layer (its outputs are the classes)."""
        return self.fc

    @property
    def pooled_head(self) -> nn.Module:
        """Everything between global pooling and the logits (mir copies and freezes it); here the classifier."""
        return self.classifier

    def pruning_ignored_layers(self) -> list[nn.Module]:
        """Layers whose output channels structured pruning must keep; by default only the classifier."""
        return [self.classifier]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Logits from the feature map of :meth:`forward_features` (global pooling, then the head)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
