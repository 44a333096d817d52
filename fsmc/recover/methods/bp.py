"""``bp``: plain back-propagation fine-tuning of the compressed student on the few-shot labels.

Formula: ``L = CE(s(x), y)`` over the few-shot set (the "BP" baseline of MiR and
PRACTISE). Departure from those papers: the optimiser and schedule are the shared
recovery loop's (SGD, momentum 0.9, cosine decay over ``recover.steps``), not
their per-paper settings. With ``recover.oe`` the OE-FSMC terms are added: the
label term on OOD images (labels ~ Gamma, weights w) and, since bp has no
distillation of its own, the plug-in's joint distillation (teacher logits over
ID ∪ OOD at weight ``recover.joint_kd``). bp+oe therefore uses the teacher where
bp does not: the plug-in is what brings the teacher in.
"""

from __future__ import annotations

import torch
from torch import nn

from fsmc.config import RecoverParams
from fsmc.config.methods.bp import METHOD as DECLARATION
from fsmc.recover.loop import Objective, logit_outputs, train
from fsmc.recover.methods.base import RecoveryContext, RecoveryMethod
from fsmc.recover.report import RecoveryReport


def run(student: nn.Module, context: RecoveryContext, params: RecoverParams) -> tuple[nn.Module, RecoveryReport]:
    """Cross-entropy fine-tuning (plus the OE label term when plugged in)."""
    objective = Objective(0.0, 1.0, logit_outputs, lambda s, t: torch.zeros(()))
    return train(student, context.data, params, objective)


METHOD = RecoveryMethod(DECLARATION, run)
