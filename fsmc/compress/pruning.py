"""Structured channel pruning with torch-pruning: channels are really removed.

torch-pruning traces the model, groups layers whose channels are coupled (a
conv, its BatchNorm and the next conv's input) and removes the lowest-importance
channels of each group, so the result is a smaller dense model, not a mask.
The classifier's outputs (the classes) are never pruned.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch_pruning as tp

from fsmc.errors import FsmcError
from fsmc.models.normalized import NormalizedClassifier


@dataclass(frozen=True)
class ModelCost:
    """Multiply-accumulates of one forward pass of one image, and parameter count."""

    macs: int
    params: int


def model_cost(model: torch.nn.Module, example: torch.Tensor) -> ModelCost:
    """Count MACs and parameters with torch-pruning's counter on one example image."""
    macs, params = tp.utils.count_ops_and_params(model, example[:1])
    return ModelCost(int(macs), int(params))


def channel_counts(teacher: torch.nn.Module, student: torch.nn.Module) -> dict[str, list[int]]:
    """Output channels of every conv layer, ``{name: [teacher, student]}``, to show what pruning removed."""
    before = {n: m.out_channels for n, m in teacher.named_modules() if isinstance(m, torch.nn.Conv2d)}
    after = {n: m.out_channels for n, m in student.named_modules() if isinstance(m, torch.nn.Conv2d)}
    return {name: [before[name], after[name]] for name in before if name in after}


def _importance(name: str) -> tp.importance.Importance:
    if name == "l1":
        return tp.importance.MagnitudeImportance(p=1)
    raise FsmcError(f"compress.importance={name!r} is unknown; valid: l1.")


def prune_channels(
    model: NormalizedClassifier, example: torch.Tensor, ratio: float, importance: str = "l1"
) -> NormalizedClassifier:
    """A copy of ``model`` with ``ratio`` of the channels of every prunable layer removed.

    Args:
        model: the teacher (left untouched).
        example: one input batch in [0, 1], used to trace the graph.
        ratio: share of channels removed per layer, in (0, 1).
        importance: channel importance criterion (``l1``: L1 norm of the filter weights).
    """
    student = copy.deepcopy(model).cpu().eval()
    pruner = tp.pruner.BasePruner(
        student,
        example[:1].cpu(),
        importance=_importance(importance),
        pruning_ratio=ratio,
        ignored_layers=student.pruning_ignored_layers(),
    )
    pruner.step()
    return student
