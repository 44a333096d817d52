"""What recovery trains on: the few-shot set, the OOD images and the teacher's outputs on both.

Its own module (not the loop's): the stages that only read these (compress's calibration and
importance batches, validation) then do not run, nor depend on, the recovery loop's code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class RecoveryData:
    """The few-shot set (images in [0, 1], labels), the unlabelled OOD images, and the teacher's outputs on both.

    ``teacher_features`` / ``teacher_ood_features`` (pre-pooling maps) are filled only
    for methods that mimic features; empty tensors otherwise.
    """

    images: torch.Tensor
    labels: torch.Tensor
    ood_images: torch.Tensor
    num_classes: int
    teacher_logits: torch.Tensor
    teacher_ood_logits: torch.Tensor
    teacher_features: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    teacher_ood_features: torch.Tensor = field(default_factory=lambda: torch.empty(0))

    def without_ood(self) -> RecoveryData:
        """The same data with no OOD images (the plug-in off)."""
        return RecoveryData(
            self.images, self.labels, self.ood_images[:0], self.num_classes, self.teacher_logits,
            self.teacher_ood_logits[:0], self.teacher_features, self.teacher_ood_features[:0],
        )
