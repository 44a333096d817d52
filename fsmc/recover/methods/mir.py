"""``mir``: Mimicking then Replacing (Wang et al., CVPR 2022; arXiv 2201.02620).

Formula (PRACTISE repository's MiR, notes/papers.md §4): train the whole student
backbone so its feature map *before* global pooling matches the teacher's,
``L = 1/(B C H W) * sum ||F_s(x) - F_t(x)||^2`` (no labels), with the teacher's
classifier head copied onto the student and frozen ("replace"). The student's BN
layers train (train mode), the teacher's features are fixed.

Departures: the shared loop's optimiser (SGD at mir's own rate 0.1 unless ``recover.lr``
says otherwise, Nesterov momentum 0.9, weight decay 1e-4, cosine decay over
``recover.steps``) instead of the paper's 2000
iterations with a x0.1 step at 40 %; teacher features are precomputed on
un-augmented images. With ``recover.oe`` the OOD images join the mimicking as
unlabelled inputs (MiR has no label term) and, as the plug-in's joint
distillation, the student's logits through the frozen head also match the
teacher's at weight ``recover.joint_kd`` (0.1).
"""

from __future__ import annotations

import copy

from torch import nn

from fsmc.config import RecoverParams
from fsmc.config.methods.mir import METHOD as DECLARATION
from fsmc.errors import FsmcError
from fsmc.recover.loop import Objective, train
from fsmc.recover.methods.base import RecoveryContext, RecoveryMethod, feature_mse
from fsmc.recover.report import RecoveryReport


def features_and_logits(student: nn.Module, images):
    """The student's pre-pooling features (mimicked) and its logits through its head."""
    features = student.forward_features(images)
    return features, student.forward_head(features)


def replace_head(student: nn.Module, teacher: nn.Module) -> nn.Module:
    """A copy of ``student`` carrying the teacher's head (classifier, or the MLP after pooling), frozen."""
    student = copy.deepcopy(student)
    head, teacher_head = student.pooled_head, teacher.pooled_head
    shapes = [tuple(p.shape) for p in head.parameters()]
    teacher_shapes = [tuple(p.shape) for p in teacher_head.parameters()]
    if shapes != teacher_shapes:
        raise FsmcError(
            f"mir needs the student's feature width to equal the teacher's to reuse its head: the student's "
            f"head has weights {shapes}, the teacher's {teacher_shapes}. "
            "Use a scheme that keeps the feature width (channel pruning of inner channels, distill to a same-width ResNet)."
        )
    head.load_state_dict(teacher_head.state_dict())
    for parameter in head.parameters():
        parameter.requires_grad_(False)
    return student


def run(student: nn.Module, context: RecoveryContext, params: RecoverParams) -> tuple[nn.Module, RecoveryReport]:
    """Mimic the teacher's pre-pooling features under its frozen head."""
    objective = Objective(1.0, 0.0, features_and_logits, feature_mse, target="features")
    recovered, report = train(replace_head(student, context.teacher), context.data, params, objective)
    for parameter in recovered.parameters():
        parameter.requires_grad_(True)
    return recovered, report


METHOD = RecoveryMethod(DECLARATION, run)
