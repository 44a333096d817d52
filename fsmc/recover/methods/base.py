"""What a recovery method is: a name, its paper, and a function from the compressed student to a recovered one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch.nn.functional as F
from torch import nn

from fsmc.compress.pruning import KeptChannels
from fsmc.config import MethodDeclaration, RecoverParams
from fsmc.recover.data import RecoveryData
from fsmc.recover.loop import Objective, logit_outputs
from fsmc.recover.losses import distillation_loss
from fsmc.recover.report import RecoveryReport


@dataclass(frozen=True)
class RecoveryContext:
    """Everything a method may use: the teacher, the data with the teacher's outputs, the channels pruning kept."""

    teacher: nn.Module
    data: RecoveryData
    kept: KeptChannels = field(default_factory=KeptChannels)


@dataclass(frozen=True)
class RecoveryMethod:
    """The code of a recovery method, registered in :data:`fsmc.recover.methods.METHODS`; what it is (name,
    description, params, what it applies to) is its torch-free declaration in ``fsmc.config.methods.<name>``."""

    declaration: MethodDeclaration
    run: Callable[[nn.Module, RecoveryContext, RecoverParams], tuple[nn.Module, RecoveryReport]]

    @property
    def name(self) -> str:
        """``recover.method``'s value for it."""
        return self.declaration.name


def kd_objective(params: RecoverParams) -> Objective:
    """Hinton KD on logits: ``alpha * T^2 KL + (1 - alpha) * CE`` (shared by kd and cd's fine-tuning)."""
    return Objective(
        distill_weight=params.alpha,
        label_weight=1.0 - params.alpha,
        outputs=logit_outputs,
        distill=lambda s, t: distillation_loss(s, t, params.temperature),
    )


def feature_mse(student_features, teacher_features):
    """MiR's loss: mean squared error over batch, channels and positions."""
    return F.mse_loss(student_features, teacher_features)
