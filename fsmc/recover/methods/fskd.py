"""``fskd``: Few Sample Knowledge Distillation (Li et al., CVPR 2020; arXiv 1812.01839).

Formula: after each compressed layer ``l`` a 1x1 conv ``Q_l`` is solved in closed
form by least squares on unlabelled images, over every image and position::

    Q_l = argmin_Q || Y_t,l - Q Y_s,l ||^2      (+ a 1e-6 relative ridge for stability)

then absorbed into the layer (``W' = Q W``, ``b' = Q b``), so the student keeps its
parameter count and inference cost. ``Y_t`` is the teacher layer's output at the
channels the student kept, ``Y_s`` the student layer's output (before BatchNorm,
as Q must sit directly on the conv to be absorbed exactly). Layers are solved
front to back, each on the already corrected earlier layers. No labels, no SGD.

Departures: the paper puts Q after the last conv of each pruned block; here every
layer whose shape pruning changed gets one (for a pruned output, Q maps onto the
teacher's kept channels). With ``recover.oe`` the OOD images join the least
squares as further unlabelled rows, their mean weighted ``recover.layerwise_ood_weight``
(0.25) against the shots' mean; there is no training to stop early. Why fskd gains
little from OOD images: a c x c correction is already pinned down by the shots'
thousands of positions, so extra rows from another distribution can only pull the fit
away from the in-distribution one; weighted down, they act as a mild regulariser
(digits, 60 steps, 3 seeds: +0.56 top-1 at 0.25, -4.0 unweighted). The
teacher's layer outputs are recomputed per run (cut-short forward passes), not read
from the teacher-outputs cache, which holds logits and features only.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from fsmc.config import RecoverParams
from fsmc.config.methods.fskd import METHOD as DECLARATION
from fsmc.recover.layers import capture, channels_last, compressed_layers, kept_outputs
from fsmc.recover.layerwise_data import layerwise_images, layerwise_weights
from fsmc.recover.loop import start_report
from fsmc.recover.methods.base import RecoveryContext, RecoveryMethod
from fsmc.recover.report import RecoveryReport

RIDGE = 1e-6


def least_squares(student_out: torch.Tensor, teacher_out: torch.Tensor, image_weights: torch.Tensor | None = None) -> torch.Tensor:
    """``Q`` (c x c) minimising ``||teacher_out - Q student_out||^2`` over rows of channels, in float64.

    ``image_weights`` (one per image) weight every row of that image; None weighs all alike.
    """
    a, b = channels_last(student_out).double(), channels_last(teacher_out).double()
    weighted = a
    if image_weights is not None:
        rows_per_image = len(a) // len(image_weights)
        weighted = a * image_weights.double().repeat_interleave(rows_per_image)[:, None]
    gram = weighted.T @ a
    gram += RIDGE * gram.diagonal().mean().clamp_min(1e-12) * torch.eye(len(gram), dtype=gram.dtype)
    return torch.linalg.solve(gram, weighted.T @ b).T.float()


def absorb(layer: nn.Module, correction: torch.Tensor) -> None:
    """Fold ``Q`` into ``layer`` in place: ``W' = Q W`` (over output channels), ``b' = Q b``."""
    with torch.no_grad():
        weight = layer.weight
        layer.weight.copy_(torch.einsum("oj,j...->o...", correction, weight))
        if layer.bias is not None:
            layer.bias.copy_(correction @ layer.bias)


class Corrected(nn.Module):
    """``layer`` followed by the un-absorbed 1x1 conv ``Q`` (what absorption must reproduce)."""

    def __init__(self, layer: nn.Module, correction: torch.Tensor):
        super().__init__()
        self.layer = layer
        self.register_buffer("correction", correction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer(x)
        if out.dim() == 4:
            return torch.einsum("oj,njhw->nohw", self.correction, out)
        return out @ self.correction.T


def with_corrections(student: nn.Module, corrections: dict[str, torch.Tensor]) -> nn.Module:
    """A copy of ``student`` with each ``Q`` inserted after its layer, not absorbed."""
    model = copy.deepcopy(student)
    for name, correction in corrections.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, Corrected(getattr(parent, child), correction))
    return model


def solve(
    student: nn.Module, teacher: nn.Module, images: torch.Tensor, context: RecoveryContext, image_weights: torch.Tensor | None = None
) -> tuple[nn.Module, dict[str, torch.Tensor], dict[str, list[float]]]:
    """Solve and absorb every layer's ``Q`` front to back (rows weighted by ``image_weights``).

    Returns:
        (corrected student, ``{layer: Q}``, ``{layer: [relative error before, after]}``).
    """
    student = copy.deepcopy(student).eval()
    corrections, errors = {}, {}
    for name in compressed_layers(student, teacher):
        layer = student.get_submodule(name)
        student_out = capture(student, name, images, "output")
        teacher_out = capture(teacher, name, images, "output")
        teacher_out = teacher_out[:, kept_outputs(context.kept, name, teacher_out.shape[1])]
        correction = least_squares(student_out, teacher_out, image_weights)
        before = float((teacher_out - student_out).norm() / teacher_out.norm().clamp_min(1e-12))
        absorb(layer, correction)
        corrected = capture(student, name, images, "output")
        errors[name] = [round(before, 6), round(float((teacher_out - corrected).norm() / teacher_out.norm().clamp_min(1e-12)), 6)]
        corrections[name] = correction
    return student, corrections, errors


def run(student: nn.Module, context: RecoveryContext, params: RecoverParams) -> tuple[nn.Module, RecoveryReport]:
    """Closed-form least-squares correction of every compressed layer, absorbed."""
    report = start_report(context.data, params)
    images = layerwise_images(context.data, params)
    n_id = len(context.data.images)
    report.ood_size = len(images) - n_id
    weights = layerwise_weights(n_id, report.ood_size, params.layerwise_ood_weight)
    recovered, _, errors = solve(student, context.teacher, images, context, weights)
    report.notes.append(f"fskd corrected {len(errors)} layers; relative output error before -> after: {errors}")
    return recovered.eval(), report


METHOD = RecoveryMethod(DECLARATION, run)
