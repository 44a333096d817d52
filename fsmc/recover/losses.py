"""Loss terms shared by the recovery methods."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def distillation_per_image(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton KD per image: ``T^2 * KL(softmax(t/T) || softmax(s/T))``, shape ``(batch,)``.

    The ``T^2`` factor keeps gradient magnitudes comparable across temperatures.
    """
    log_student = F.log_softmax(student_logits / temperature, dim=1)
    log_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_student, log_teacher, log_target=True, reduction="none").sum(dim=1) * temperature**2


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton KD, mean over the batch (:func:`distillation_per_image` averaged)."""
    return distillation_per_image(student_logits, teacher_logits, temperature).mean()


def feature_mse_per_image(student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
    """MiR's loss per image: squared error averaged over channels and positions, shape ``(batch,)``."""
    return F.mse_loss(student_features, teacher_features, reduction="none").flatten(1).mean(dim=1)


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_i w_{y_i} CE_i / sum_i w_{y_i}`` (PyTorch's weighted mean, as in Open-Sampling)."""
    return F.cross_entropy(logits, labels, weight=weights)
