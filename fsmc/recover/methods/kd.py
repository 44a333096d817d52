"""``kd``: Hinton knowledge distillation on the few-shot set.

Formula (Hinton, Vinyals & Dean 2015): ``L = alpha * T^2 * KL(softmax(t/T) || softmax(s/T))
+ (1 - alpha) * CE(s(x), y)``, with ``T = recover.temperature`` and ``alpha =
recover.alpha``. The ``T^2`` factor is the paper's gradient-scale correction.
Departure: teacher logits are precomputed once on the un-augmented few-shot images
(no augmentation), as the few-shot setting has no data to augment from. With
``recover.oe`` the KL term runs over ID ∪ OOD (joint distillation) and the label
term gains the Gamma-labelled, w-weighted OOD cross-entropy.
"""

from __future__ import annotations

from torch import nn

from fsmc.config import RecoverParams
from fsmc.config.methods.kd import METHOD as DECLARATION
from fsmc.recover.loop import train
from fsmc.recover.methods.base import RecoveryContext, RecoveryMethod, kd_objective
from fsmc.recover.report import RecoveryReport


def run(student: nn.Module, context: RecoveryContext, params: RecoverParams) -> tuple[nn.Module, RecoveryReport]:
    """Distil the teacher's logits into the student."""
    return train(student, context.data, params, kd_objective(params))


METHOD = RecoveryMethod(DECLARATION, run)
