"""Structured channel pruning with torch-pruning: channels are really removed.

torch-pruning traces the model, groups layers whose channels are coupled (a
conv, its BatchNorm and the next conv's input) and removes the lowest-importance
channels of each group, so the result is a smaller dense model, not a mask.
The nets' ``pruning_ignored_layers`` keep the classifier and the block outputs
(MiR's "inner channels of each residual block": the CIFAR ResNets' option-A
shortcut ties every block output of a stage to one width).

Importance criteria (torch-pruning's implementations):

* ``l1`` / ``l2``: norm of each channel's weights across the group (Li et al. 2017).
* ``bn-scale``: |gamma| of the channel's BatchNorm (Liu et al., network slimming 2017).
* ``taylor``: |w * dL/dw| summed over the group (Molchanov et al. 2019), the gradient
  of the cross-entropy on the raw, imbalanced few-shot set.
* ``class-aware`` (OE-FSMC, reconstructed): the same Taylor score on a class-rebalanced
  batch, see :mod:`fsmc.compress.importance_batch`.

``uniform`` pruning removes ``ratio`` of every prunable layer; ``global_pruning``
ranks the channels of all layers together (at most 90 % of one layer, so no layer
vanishes).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import nn

from fsmc.errors import FsmcError
from fsmc.models.normalized import NormalizedClassifier

# Global pruning may empty a layer entirely without this cap.
GLOBAL_MAX_RATIO = 0.9


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


@dataclass
class KeptChannels:
    """Which teacher channels each pruned conv/linear layer kept: ``{layer name: sorted indices}``.

    ``outputs`` for layers whose output channels were pruned, ``inputs`` for layers
    whose input channels were; layers absent from a map kept all of them. FSKD and CD
    compare a student layer with the teacher's outputs at exactly these channels.
    """

    outputs: dict[str, list[int]] = field(default_factory=dict)
    inputs: dict[str, list[int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, dict[str, list[int]]]:
        return {"outputs": self.outputs, "inputs": self.inputs}

    @classmethod
    def from_json(cls, raw: dict | None) -> KeptChannels:
        raw = raw or {}
        return cls(dict(raw.get("outputs", {})), dict(raw.get("inputs", {})))


def importance_criterion(name: str) -> tp.importance.Importance:
    """torch-pruning's criterion for ``compress.importance`` (the Taylor ones need gradients on the model first)."""
    if name in ("l1", "l2"):
        return tp.importance.GroupMagnitudeImportance(p=int(name[1]))
    if name == "bn-scale":
        return tp.importance.BNScaleImportance()
    if name in ("taylor", "class-aware"):
        return tp.importance.GroupTaylorImportance()
    raise FsmcError(f"compress.importance={name!r} is unknown; valid: l1, l2, bn-scale, taylor, class-aware.")


def rounded_ratio(width: int, ratio: float, round_to: int) -> float:
    """The ratio that keeps the multiple of ``round_to`` nearest ``width * (1 - ratio)`` (at least one multiple, at most ``width``)."""
    if width <= round_to:
        return ratio
    kept = min(width, max(round_to, round_to * round(width * (1 - ratio) / round_to)))
    return (width - kept) / width


def prune_channels(
    model: NormalizedClassifier,
    example: torch.Tensor,
    ratio: float,
    importance: str = "l1",
    global_pruning: bool = False,
    gradient_loss: Callable[[nn.Module], torch.Tensor] | None = None,
    layer_ratios: Mapping[str, float] | None = None,
    round_to: int = 0,
) -> tuple[NormalizedClassifier, KeptChannels]:
    """A copy of ``model`` with ``ratio`` of the channels of its prunable layers removed.

    Args:
        model: the teacher (left untouched).
        example: one input batch in [0, 1], used to trace the graph.
        ratio: share of channels removed per layer (or overall, with ``global_pruning``), in (0, 1).
        importance: ``l1``, ``l2``, ``bn-scale``, ``taylor`` or ``class-aware``.
        global_pruning: rank channels across layers instead of within each layer.
        gradient_loss: for the Taylor criteria, the loss whose gradients score the channels.
        layer_ratios: per-layer ratios by the name of the layer whose output channels go, in place
            of ``ratio`` for those layers (0 keeps a layer whole), e.g. to reproduce a paper's
            per-stage widths.
        round_to: keep a multiple of this many channels in each layer, the multiple nearest the ratio's width and at
            least one (SIMD-friendly widths: an odd width can make a layer slower than a wider one); 0 or 1: none.
            Per layer it becomes a per-layer ratio; with ``global_pruning``, torch-pruning's own ``round_to``
            (which rounds the kept width down).

    Returns:
        The pruned copy (eval mode, CPU) and the teacher channels each pruned layer kept.
    """
    student = copy.deepcopy(model).cpu().eval()
    layers = {name for name, m in student.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    unknown = sorted(set(layer_ratios or {}) - layers)
    if unknown:
        raise FsmcError(f"layer_ratios names {unknown}, which are not conv/linear layers of the model; valid names: {', '.join(sorted(layers))}.")
    if importance in ("taylor", "class-aware"):
        if gradient_loss is None:
            raise FsmcError(f"compress.importance={importance!r} needs images to score channels by gradient.")
        student.zero_grad(set_to_none=True)
        gradient_loss(student).backward()
    if round_to > 1 and not global_pruning:
        ignored = {id(m) for layer in student.pruning_ignored_layers() for m in layer.modules()}
        rounded = {
            name: rounded_ratio(m.out_channels if isinstance(m, nn.Conv2d) else m.out_features, ratio, round_to)
            for name, m in student.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in ignored
        }
        layer_ratios = {**rounded, **(layer_ratios or {})}
    pruner = tp.pruner.BasePruner(
        student,
        example[:1].cpu(),
        importance=importance_criterion(importance),
        pruning_ratio=ratio,
        global_pruning=global_pruning,
        max_pruning_ratio=GLOBAL_MAX_RATIO if global_pruning else 1.0,
        ignored_layers=student.pruning_ignored_layers(),
        pruning_ratio_dict={student.get_submodule(name): r for name, r in (layer_ratios or {}).items()},
        round_to=round_to if round_to > 1 and global_pruning else None,
    )
    names = {module: name for name, module in student.named_modules()}
    widths = {
        name: (m.out_channels, m.in_channels) if isinstance(m, nn.Conv2d) else (m.out_features, m.in_features)
        for name, m in student.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    }
    removed_out: dict[str, set[int]] = {}
    removed_in: dict[str, set[int]] = {}
    for group in pruner.step(interactive=True):
        for dep, idxs in group:
            name = names.get(dep.target.module)
            if name not in widths:
                continue
            handler = getattr(dep.handler, "__name__", "")
            if handler == "prune_out_channels":
                removed_out.setdefault(name, set()).update(int(i) for i in idxs)
            elif handler == "prune_in_channels":
                removed_in.setdefault(name, set()).update(int(i) for i in idxs)
        group.prune()
    student.zero_grad(set_to_none=True)
    kept = KeptChannels(
        outputs={n: sorted(set(range(widths[n][0])) - r) for n, r in removed_out.items()},
        inputs={n: sorted(set(range(widths[n][1])) - r) for n, r in removed_in.items()},
    )
    return student.eval(), kept


def masked_copy(model: NormalizedClassifier, kept: KeptChannels) -> NormalizedClassifier:
    """The unpruned ``model`` with every removed output channel silenced (weights, BN scale and shift zeroed).

    Its outputs equal the pruned model's: the proof that pruning removed exactly those channels.
    """
    masked = copy.deepcopy(model).eval()
    modules = dict(masked.named_modules())
    for name, channels in kept.outputs.items():
        conv = modules[name]
        drop = sorted(set(range(conv.weight.shape[0])) - set(channels))
        with torch.no_grad():
            conv.weight[drop] = 0
            if conv.bias is not None:
                conv.bias[drop] = 0
            # The BatchNorm that follows the conv (same prefix, bn instead of conv) would add its shift back.
            for bn in _following_batchnorms(masked, name):
                bn.weight[drop] = 0
                bn.bias[drop] = 0
    return masked


def _following_batchnorms(model: nn.Module, conv_name: str) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm fed by ``conv_name``: the next module in definition order (true for the zoo's nets)."""
    ordered = list(model.named_modules())
    for position, (name, _) in enumerate(ordered):
        if name == conv_name:
            for _, module in ordered[position + 1 :]:
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    return [module]
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    return []
    return []
