"""The losses whose gradients score channels for the Taylor criteria.

``taylor`` uses the plain cross-entropy on the few-shot set, which inherits its
imbalance: head classes dominate the gradient, so channels that serve the
minority classes look unimportant and are the first removed.

``class-aware`` (OE-FSMC's "class-aware pruning", reconstructed; notes/papers.md
§1.3) scores on a class-rebalanced batch instead: every few-shot class carries
the same total weight (each image weighs ``1 / (C * n_c)``), and OOD images join
with labels drawn from the complementary distribution Gamma and the class
weights ``w_c`` (Open-Sampling), so the rare classes' decision directions are
represented. Departure: the OE-FSMC paper's exact scoring could not be read.
``class-aware`` uses the OOD pool even with ``recover.oe=false``: it is a pruning
criterion of its own, independent of the recovery plug-in.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from fsmc.data.complementary import class_prior, class_weights, complementary_distribution, draw_ood_labels


def taylor_loss(images: torch.Tensor, labels: torch.Tensor) -> Callable[[nn.Module], torch.Tensor]:
    """Cross-entropy of a model on the (imbalanced) few-shot images."""
    return lambda model: F.cross_entropy(model(images), labels)


def class_aware_loss(
    images: torch.Tensor, labels: torch.Tensor, ood_images: torch.Tensor, num_classes: int, seed: int = 0
) -> Callable[[nn.Module], torch.Tensor]:
    """Class-balanced cross-entropy on the few-shot images plus Gamma-labelled, w-weighted OOD images."""
    counts = torch.bincount(labels, minlength=num_classes)
    per_image = 1.0 / (num_classes * counts[labels].double())
    prior = class_prior(counts.tolist())
    ood_labels = draw_ood_labels(complementary_distribution(prior), len(ood_images), torch.Generator().manual_seed(seed))
    weights = class_weights(prior)

    def loss(model: nn.Module) -> torch.Tensor:
        balanced = (F.cross_entropy(model(images), labels, reduction="none") * per_image.float()).sum()
        if not len(ood_images):
            return balanced
        return balanced + F.cross_entropy(model(ood_images), ood_labels, weight=weights)

    return loss
