"""Compression schemes by name: what ``compress.scheme`` does to the teacher.

==============  ===============================================================
``channel``     structured channel pruning (torch-pruning), see ``pruning``
``unstructured`` magnitude pruning of single weights, kept through recovery
``int8-ptq``    post-training static int8 quantization (x86), see ``quantization``
``int8-qat``    int8 quantization-aware training: the recover stage trains
                through fake quantization and converts
``distill``     a smaller architecture trained from the teacher, see ``distill``
``channel+``    channel pruning, float recovery, then int8 PTQ of the recovered
``int8-ptq``    student (the recover stage quantizes after the method)
``block-drop``  whole residual blocks removed, the least recoverable last, see
                ``blocks``
``block-drop+`` blocks dropped, float recovery, then int8 PTQ (as ``channel+int8-ptq``):
``int8-ptq``    depth and int8, the two levers that pay at batch 1
==============  ===============================================================

Adding a scheme is a function here registered in ``SCHEMES`` and its declaration module in
``fsmc/config/schemes/`` (name, description, params, the methods it rules out), from which
validation and ``fsmc methods`` derive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from fsmc.compress.allocation import allocation_for_macs
from fsmc.compress.blocks import drop_blocks
from fsmc.compress.distill import smaller_student
from fsmc.compress.importance_batch import class_aware_loss, taylor_loss
from fsmc.compress.pruning import model_cost, prune_channels
from fsmc.compress.quantization import quantize_ptq
from fsmc.compress.sensitivity import cached_sensitivity
from fsmc.compress.unstructured import prune_weights, sparsity
from fsmc.config import CompressParams
from fsmc.models.checkpoint import quantized_meta
from fsmc.models.normalized import NormalizedClassifier

# Few-shot images first, then OOD, for the damage table: one forward pass per (layer, ratio), ~1 min for ResNet-56.
SENSITIVITY_IMAGES = 256


@dataclass(frozen=True)
class SchemeInputs:
    """What a scheme may use besides the teacher: an example batch, the few-shot set and the OOD images."""

    teacher_name: str
    spec: dict[str, Any]
    example: torch.Tensor
    images: torch.Tensor
    labels: torch.Tensor
    ood_images: torch.Tensor
    num_classes: int


@dataclass
class Compressed:
    """The compressed model, the spec that rebuilds it, checkpoint metadata and a summary for people."""

    model: nn.Module
    spec: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def _calibration(inputs: SchemeInputs, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Few-shot images first, then OOD images, ``size`` in all (the few-shot set is never cut below itself)."""
    room = max(size - len(inputs.images), 0)
    return inputs.images, inputs.labels, inputs.ood_images[:room]


def _channel(teacher: NormalizedClassifier, params: CompressParams, inputs: SchemeInputs) -> Compressed:
    images, labels, ood = _calibration(inputs, params.calibration_images)
    loss = None
    if params.importance == "taylor":
        loss = taylor_loss(images, labels)
    elif params.importance == "class-aware":
        loss = class_aware_loss(images, labels, ood, inputs.num_classes)
    summary: dict[str, Any] = {}
    layer_ratios = None
    if params.allocation == "damage" and not params.global_pruning:  # global ranking is an allocation of its own
        layer_ratios, summary = damage_allocation(teacher, params, inputs.example, torch.cat([images, ood])[:SENSITIVITY_IMAGES], loss)
    # With an allocation every prunable layer has its own ratio; compress.ratio only set the MACs level.
    ratio = 0.0 if layer_ratios is not None else params.ratio
    student, kept = prune_channels(teacher, inputs.example, ratio, params.importance, params.global_pruning, loss, layer_ratios, params.round_to)
    return Compressed(student, inputs.spec, {"kept_channels": kept.to_json()}, summary)


def damage_allocation(
    teacher: NormalizedClassifier, params: CompressParams, example: torch.Tensor, images: torch.Tensor, loss
) -> tuple[dict[str, float], dict[str, Any]]:
    """Per-layer ratios keeping ``params.macs_fraction`` of the teacher's MACs (or uniform-at-ratio's) with the least measured damage."""
    # Whether the table came from the cache is not recorded: the stage's outputs must not depend on the cache's state
    # (two runs of the same params wrote different summaries, and the next stage's cache key with them).
    table, _ = cached_sensitivity(teacher, images, params.importance, loss)
    teacher_macs = model_cost(teacher, example).macs

    def counted(layer_ratios: dict[str, float] | None) -> int:
        ratio = 0.0 if layer_ratios is not None else params.ratio
        pruned, _ = prune_channels(teacher, example, ratio, params.importance, False, loss, layer_ratios, 0 if layer_ratios else params.round_to)
        return model_cost(pruned, example).macs

    keep = params.macs_fraction or counted(None) / teacher_macs
    ratios, macs = allocation_for_macs(table, teacher_macs, keep, counted, params.round_to)
    summary = {
        "allocation": {
            "macs_fraction_asked": round(keep, 6),
            "macs_fraction": round(macs / teacher_macs, 6),
            "layer_ratios": ratios,
            "sensitivity_images": len(images),
            "sensitivity": [layer.__dict__ for layer in table],
        }
    }
    return ratios, summary


def _unstructured(teacher: NormalizedClassifier, params: CompressParams, inputs: SchemeInputs) -> Compressed:
    student = prune_weights(teacher, params.ratio, params.global_pruning)
    return Compressed(student, inputs.spec, summary={"sparsity": round(sparsity(student), 6)})


def _int8_ptq(teacher: NormalizedClassifier, params: CompressParams, inputs: SchemeInputs) -> Compressed:
    images, _, ood = _calibration(inputs, params.calibration_images)
    calibration = torch.cat([images, ood])
    student = quantize_ptq(teacher, calibration)
    return Compressed(student, inputs.spec, quantized_meta(teacher, inputs.example), {"calibration_images": len(calibration)})


def _int8_qat(teacher: NormalizedClassifier, params: CompressParams, inputs: SchemeInputs) -> Compressed:
    # The float teacher goes on; the recover stage inserts fake quantization, trains, and converts.
    return Compressed(teacher, inputs.spec, {"quantize_after_recovery": "qat"})


def _block_drop(teacher: NormalizedClassifier, params: CompressParams, inputs: SchemeInputs) -> Compressed:
    images, _, ood = _calibration(inputs, params.calibration_images)
    student, record = drop_blocks(teacher, params.ratio, torch.cat([images, ood]), inputs.example)
    return Compressed(student, inputs.spec, {"dropped_blocks": record["dropped_blocks"]}, record)


def _then_int8_ptq(
    structural: Callable[[NormalizedClassifier, CompressParams, SchemeInputs], Compressed],
) -> Callable[[NormalizedClassifier, CompressParams, SchemeInputs], Compressed]:
    """``structural`` followed by int8 PTQ: the structured float student goes on; the recover stage recovers it
    in float, then quantizes the recovered student (``fsmc.recover.pipeline``)."""

    def composed(teacher: NormalizedClassifier, params: CompressParams, inputs: SchemeInputs) -> Compressed:
        result = structural(teacher, params, inputs)
        result.meta |= {"quantize_after_recovery": "ptq", "calibration_images": params.calibration_images}
        return result

    return composed


def _distill(teacher: NormalizedClassifier, params: CompressParams, inputs: SchemeInputs) -> Compressed:
    name = params.resolved_student(inputs.teacher_name)
    student, spec = smaller_student(teacher, inputs.spec, name, params.student_init, inputs.example)
    return Compressed(student, spec, summary={"student_arch": name, "student_init": params.student_init})


SCHEMES: dict[str, Callable[[NormalizedClassifier, CompressParams, SchemeInputs], Compressed]] = {
    "channel": _channel,
    "unstructured": _unstructured,
    "int8-ptq": _int8_ptq,
    "int8-qat": _int8_qat,
    "distill": _distill,
    "channel+int8-ptq": _then_int8_ptq(_channel),
    "block-drop": _block_drop,
    "block-drop+int8-ptq": _then_int8_ptq(_block_drop),
}

def compress(teacher: NormalizedClassifier, params: CompressParams, inputs: SchemeInputs) -> Compressed:
    """Apply ``params.scheme`` to a copy of ``teacher``."""
    result = SCHEMES[params.scheme](teacher, params, inputs)
    result.meta = {"scheme": params.scheme, **result.meta}
    return result
