"""``cd``: Cross Distillation (Bai et al., AAAI 2020; arXiv 1911.09450).

Formula (official code, notes/papers.md §3): layer by layer, front to back, the
student layer's weights ``W_s`` minimise ``L = mu * L_c + (1 - mu) * L_i`` with

* correction ``L_c = || W_t * h_t - W_s * h_t ||^2`` (the teacher's hidden map fed to
  the student layer: removes the error accumulated before it),
* imitation  ``L_i = || W_t * h_s - W_s * h_s ||^2`` (the student's hidden map fed to
  the teacher layer: keeps the forward pass consistent),

both mean-squared over images, channels and positions (the code's normalisation);
``h_t``/``h_s`` are the teacher's / student's inputs to the layer on the same
images, restricted to (or zero-filled at) the channels pruning kept. The layer-wise
phase is followed by fine-tuning of the whole student.

Departures: the channels are chosen by the compression scheme before CD runs, so
CD's proximal group-threshold inside the solve is replaced by plain Adam
(``recover.layerwise_steps`` per layer at ``recover.layerwise_lr``, batches of 64;
the code uses 3000 iterations, lr 1e-3 for ResNet-56); a sparse (unstructured)
layer keeps its zeros through a fixed mask. The teacher's layer inputs are recomputed
per run (cut-short forward passes), not read from the teacher-outputs cache. The fine-tuning is Hinton KD (the
code's ``--use_kd`` option) through the shared loop rather than the code's default
cross-entropy. With ``recover.oe`` OOD images join the layer-wise phase as
unlabelled inputs and the fine-tuning gets the full plug-in.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from fsmc.compress.unstructured import trainable_weight
from fsmc.config import RecoverParams
from fsmc.recover.layers import apply_weight, capture, compressed_layers, kept_inputs, kept_outputs
from fsmc.recover.loop import RecoveryReport, layerwise_images, start_report, train
from fsmc.recover.methods.base import RecoveryContext, RecoveryMethod, kd_objective

LAYERWISE_BATCH = 64


def _expand(h_student: torch.Tensor, channels: list[int], width: int) -> torch.Tensor:
    """The student's hidden map at the teacher's width: kept channels in place, zeros elsewhere."""
    full = h_student.new_zeros((h_student.shape[0], width, *h_student.shape[2:]))
    full[:, channels] = h_student
    return full


def regressed_layers(student: nn.Module, teacher: nn.Module, context: RecoveryContext) -> list[str]:
    """Layers whose inputs were pruned, or whose weights are sparse: the layers CD regresses.

    A layer that lost only output channels starts at ``W_s = W_t[kept]``, where both
    ``L_c`` and ``L_i`` are exactly zero with zero gradient (as in the CD code, which
    prunes input channels), so it is skipped.
    """
    return [
        name
        for name in compressed_layers(student, teacher)
        if name in context.kept.inputs or parametrize.is_parametrized(student.get_submodule(name), "weight")
    ]


def layerwise(student: nn.Module, teacher: nn.Module, images: torch.Tensor, context: RecoveryContext, params: RecoverParams) -> dict[str, list[float]]:
    """Cross-distil every compressed layer of ``student`` in place; returns ``{layer: [loss first, loss last]}``."""
    generator = torch.Generator().manual_seed(params.seed)
    losses = {}
    for name in regressed_layers(student, teacher, context):
        s_layer, t_layer = student.get_submodule(name), teacher.get_submodule(name)
        h_t, h_s = capture(teacher, name, images, "input"), capture(student, name, images, "input")
        inputs_kept = kept_inputs(context.kept, name, h_t.shape[1])
        with torch.no_grad():
            y_tt = apply_weight(t_layer, h_t, t_layer.weight)
            outputs_kept = kept_outputs(context.kept, name, y_tt.shape[1])
            y_tt = y_tt[:, outputs_kept]
            y_st = apply_weight(t_layer, _expand(h_s, inputs_kept, h_t.shape[1]), t_layer.weight)[:, outputs_kept]
        h_ts = h_t[:, inputs_kept]
        weight, mask = trainable_weight(s_layer)  # a sparse layer trains its original weight under a fixed mask
        optimizer = torch.optim.Adam([weight], lr=params.layerwise_lr)
        first = last = 0.0
        for step in range(params.layerwise_steps):
            batch = torch.randint(len(images), (min(LAYERWISE_BATCH, len(images)),), generator=generator)
            effective = weight * mask if mask is not None else weight
            correction = F.mse_loss(apply_weight(s_layer, h_ts[batch], effective), y_tt[batch])
            imitation = F.mse_loss(apply_weight(s_layer, h_s[batch], effective), y_st[batch])
            loss = params.mu * correction + (1 - params.mu) * imitation
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            first = loss.item() if step == 0 else first
            last = loss.item()
        losses[name] = [round(first, 6), round(last, 6)]
    return losses


def run(student: nn.Module, context: RecoveryContext, params: RecoverParams) -> tuple[nn.Module, RecoveryReport]:
    """Layer-wise cross distillation, then KD fine-tuning of the whole student."""
    images = layerwise_images(context.data, params)
    teacher = copy.deepcopy(context.teacher).cpu().eval()
    student = copy.deepcopy(student).cpu()
    losses = layerwise(student, teacher, images, context, params)
    report = start_report(context.data, params)
    report.notes.append(f"cd layer-wise phase on {len(images)} images, loss first -> last step per layer: {losses}")
    return train(student, context.data, params, kd_objective(params), report)


METHOD = RecoveryMethod(
    name="cd",
    summary="cross distillation: layer-wise mu * correction + (1 - mu) * imitation, then KD fine-tuning",
    paper="Bai et al., Few Shot Network Compression via Cross Distillation, AAAI 2020",
    teacher_signal="layer inputs/outputs + logits",
    run=run,
)
