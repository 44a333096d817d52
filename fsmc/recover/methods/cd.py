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
CD's proximal group-threshold inside the solve is dropped, and the objective, a
least-squares problem in ``W_s``, is solved in closed form (normal equations over
the unfolded input patches, in float64, with a small ridge towards the pruned
weights) instead of by the code's 3000 Adam iterations per layer (lr 1e-3 for
ResNet-56), which approach the same minimum; a sparse (unstructured) layer solves
each output row over its kept weights, so its zeros stay zero. The teacher's layer
inputs are recomputed per run (cut-short forward passes), not read from the
teacher-outputs cache. The fine-tuning is Hinton KD (the code's ``--use_kd`` option)
through the shared loop rather than the code's default cross-entropy. With
``recover.oe`` OOD images join the layer-wise phase as unlabelled inputs (their mean
weighted ``recover.layerwise_ood_weight`` against the shots' mean) and the
fine-tuning gets the full plug-in.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from fsmc.compress.unstructured import trainable_weight
from fsmc.config import RecoverParams
from fsmc.config.methods.cd import METHOD as DECLARATION
from fsmc.recover.layers import apply_weight, capture, compressed_layers, kept_inputs, kept_outputs
from fsmc.recover.layerwise_data import layerwise_images, layerwise_weights
from fsmc.recover.loop import start_report, train
from fsmc.recover.methods.base import RecoveryContext, RecoveryMethod, kd_objective
from fsmc.recover.report import RecoveryReport

# Pull towards the pruned weights, relative to the Gram matrix's mean diagonal: only where the images leave a direction free.
_RIDGE = 1e-3
# Images per chunk when the layer's input patches are unfolded: bounds memory on large inputs (224 px).
_UNFOLD_CHUNK = 32


def _expand(h_student: torch.Tensor, channels: list[int], width: int) -> torch.Tensor:
    """The student's hidden map at the teacher's width: kept channels in place, zeros elsewhere."""
    full = h_student.new_zeros((h_student.shape[0], width, *h_student.shape[2:]))
    full[:, channels] = h_student
    return full


def _rows(module: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The layer's inputs as regression rows (image-major): unfolded conv patches, or the linear layer's inputs."""
    if isinstance(module, nn.Conv2d):
        patches = F.unfold(inputs, module.kernel_size, module.dilation, module.padding, module.stride)
        return patches.transpose(1, 2).reshape(-1, patches.shape[1])
    return inputs


def _targets(outputs: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Layer outputs as rows of output channels, without the (fixed) bias: what ``W @ row`` must reproduce."""
    rows = outputs.permute(0, 2, 3, 1).reshape(-1, outputs.shape[1]) if outputs.dim() == 4 else outputs
    return rows - bias if bias is not None else rows


def closed_form(
    module: nn.Module,
    bias: torch.Tensor | None,
    terms: list[tuple[float, torch.Tensor, torch.Tensor]],
    image_weights: torch.Tensor,
    start: torch.Tensor,
    mask: torch.Tensor | None,
    ridge: float,
) -> torch.Tensor:
    """The weight minimising ``sum_k coef_k * sum_i w_i ||W * inputs_k[i] - outputs_k[i]||^2 + ridge' ||W - start||^2``.

    ``terms``: (coefficient, layer inputs, wanted layer outputs) over the same images; ``ridge'`` is
    ``ridge`` times the mean diagonal of the Gram matrix (scale-free), pulling towards ``start`` where
    the images do not pin a direction down. With ``mask`` (a sparse layer) each output row is solved
    over its kept weights only, so the zeros stay zero.
    """
    width = start[0].numel()
    gram = torch.zeros(width, width, dtype=torch.float64)
    moment = torch.zeros(width, start.shape[0], dtype=torch.float64)
    for coefficient, inputs, outputs in terms:
        for first in range(0, len(inputs), _UNFOLD_CHUNK):
            chunk = slice(first, first + _UNFOLD_CHUNK)
            a = _rows(module, inputs[chunk]).double()
            weights = image_weights[chunk].double().repeat_interleave(len(a) // len(inputs[chunk]))[:, None]
            gram += coefficient * (a * weights).T @ a
            moment += coefficient * (a * weights).T @ _targets(outputs[chunk], bias).double()
    flat_start = start.reshape(start.shape[0], -1).double()
    regulariser = ridge * gram.diagonal().mean().clamp_min(1e-12)
    if mask is None:
        solution = torch.linalg.solve(gram + regulariser * torch.eye(width, dtype=torch.float64), moment + regulariser * flat_start.T).T
    else:
        flat_mask = mask.reshape(mask.shape[0], -1).bool()
        solution = torch.zeros_like(flat_start)
        for row, kept in enumerate(flat_mask):
            sub = gram[kept][:, kept] + regulariser * torch.eye(int(kept.sum()), dtype=torch.float64)
            solution[row, kept] = torch.linalg.solve(sub, moment[kept, row] + regulariser * flat_start[row, kept])
    return solution.reshape(start.shape).to(start.dtype)


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


def _cross_loss(layer: nn.Module, weight: torch.Tensor, h_ts: torch.Tensor, y_tt: torch.Tensor, h_s: torch.Tensor, y_st: torch.Tensor, mu: float) -> float:
    """``mu * L_c + (1 - mu) * L_i`` of ``layer`` with ``weight``."""
    correction = F.mse_loss(apply_weight(layer, h_ts, weight), y_tt)
    imitation = F.mse_loss(apply_weight(layer, h_s, weight), y_st)
    return float(mu * correction + (1 - mu) * imitation)


def solve_layer(
    layer: nn.Module, h_ts: torch.Tensor, y_tt: torch.Tensor, h_s: torch.Tensor, y_st: torch.Tensor, mu: float, image_weights: torch.Tensor
) -> None:
    """Set ``layer``'s weight to the minimiser of the cross-distillation loss, group by group (depthwise convs too)."""
    weight, mask = trainable_weight(layer)  # a sparse layer solves its original weight under its fixed mask
    groups = getattr(layer, "groups", 1)
    in_width, out_width = h_s.shape[1] // groups, weight.shape[0] // groups
    solved = weight.detach().clone()
    for group in range(groups):
        ins, outs = slice(group * in_width, (group + 1) * in_width), slice(group * out_width, (group + 1) * out_width)
        terms = [(mu, h_ts[:, ins], y_tt[:, outs]), (1 - mu, h_s[:, ins], y_st[:, outs])]
        bias = layer.bias[outs] if layer.bias is not None else None
        solved[outs] = closed_form(layer, bias, terms, image_weights, solved[outs], None if mask is None else mask[outs], _RIDGE)
    with torch.no_grad():
        weight.copy_(solved)


def layerwise(
    student: nn.Module, teacher: nn.Module, images: torch.Tensor, context: RecoveryContext, params: RecoverParams, image_weights: torch.Tensor
) -> dict[str, list[float]]:
    """Cross-distil every compressed layer of ``student`` in place; returns ``{layer: [loss before, loss after]}``."""
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
            before = _cross_loss(s_layer, s_layer.weight, h_ts, y_tt, h_s, y_st, params.mu)
            solve_layer(s_layer, h_ts, y_tt, h_s, y_st, params.mu, image_weights)
            losses[name] = [round(before, 6), round(_cross_loss(s_layer, s_layer.weight, h_ts, y_tt, h_s, y_st, params.mu), 6)]
    return losses


def run(student: nn.Module, context: RecoveryContext, params: RecoverParams) -> tuple[nn.Module, RecoveryReport]:
    """Layer-wise cross distillation, then KD fine-tuning of the whole student."""
    images = layerwise_images(context.data, params)
    teacher = copy.deepcopy(context.teacher).cpu().eval()
    student = copy.deepcopy(student).cpu()
    n_id = len(context.data.images)
    image_weights = layerwise_weights(n_id, len(images) - n_id, params.layerwise_ood_weight)
    losses = layerwise(student, teacher, images, context, params, image_weights)
    report = start_report(context.data, params)
    report.notes.append(f"cd layer-wise phase on {len(images)} images, loss before -> after the solve per layer: {losses}")
    return train(student, context.data, params, kd_objective(params), report)


METHOD = RecoveryMethod(DECLARATION, run)
