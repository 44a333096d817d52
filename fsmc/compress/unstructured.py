"""Unstructured magnitude pruning with torch's own ``torch.nn.utils.prune``, sparsity kept through recovery.

The smallest-magnitude weights of every Conv2d and Linear layer but the classifier
are zeroed (per layer, or ranked across all layers with ``global_pruning``); the
classifier stays dense, as in channel pruning, so mir can keep the teacher's head. Checkpoints hold
plain dense tensors with exact zeros; before recovery :func:`keep_sparsity`
re-attaches a fixed mask as a parametrization (``weight = original * mask``) so no
optimiser step can revive a pruned weight, and :func:`make_permanent` folds it back
in. (A parametrization rather than ``prune.custom_from_mask``: the latter's cached
weight tensor breaks ``copy.deepcopy``, which recovery uses to keep the best model.)
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize, prune


class FixedZeros(nn.Module):
    """The parametrization ``weight = original * mask`` with a constant 0/1 ``mask``."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask


def _prunable(model: nn.Module) -> list[nn.Module]:
    head = getattr(model, "classifier", None)
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and m is not head]


def prune_weights(model: nn.Module, ratio: float, global_pruning: bool = False) -> nn.Module:
    """A copy of ``model`` with ``ratio`` of the conv/linear weights set to exactly zero (L1 magnitude)."""
    pruned = copy.deepcopy(model).cpu().eval()
    layers = _prunable(pruned)
    if global_pruning:
        prune.global_unstructured([(m, "weight") for m in layers], pruning_method=prune.L1Unstructured, amount=ratio)
    else:
        for module in layers:
            prune.l1_unstructured(module, "weight", amount=ratio)
    return make_permanent(pruned)


def keep_sparsity(model: nn.Module) -> nn.Module:
    """Fix every zero weight of the conv/linear layers at zero for training (in place; returns ``model``)."""
    for module in _prunable(model):
        parametrize.register_parametrization(module, "weight", FixedZeros((module.weight != 0).to(module.weight.dtype)))
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold the masks into plain weights (in place; returns ``model``)."""
    for module in _prunable(model):
        if prune.is_pruned(module):
            prune.remove(module, "weight")
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model


def trainable_weight(module: nn.Module) -> tuple[nn.Parameter, torch.Tensor | None]:
    """The parameter an optimiser should update for ``module.weight``, and its fixed mask (None: dense)."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original, module.parametrizations.weight[0].mask
    return module.weight, None


def sparsity(model: nn.Module) -> float:
    """Share of the conv/linear weights that are exactly zero."""
    weights = [m.weight.detach() for m in _prunable(model)]
    total = sum(w.numel() for w in weights)
    return float(sum(int((w == 0).sum()) for w in weights) / total) if total else 0.0


def zero_pattern(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{layer name: boolean map of zero weights}`` of the pruned layers, to check that recovery kept every zero."""
    layers = _prunable(model)
    return {n: (m.weight.detach() == 0) for n, m in model.named_modules() if any(m is layer for layer in layers)}
