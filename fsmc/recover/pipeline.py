"""Recovery around a method: what the compression scheme asks of training, before and after.

* ``unstructured``: the zeros are fixed by a mask for training and folded back after,
  so the sparsity survives any method.
* ``int8-qat``: fake quantization is inserted before training and the trained graph
  is converted to real int8 after (checkpoint meta for the int8 reload included).
* ``channel+int8-ptq`` and ``block-drop+int8-ptq``: the method recovers the pruned (or
  shallower) student in float, then it is quantized post-training, calibrated on the shots plus OOD images (as ``int8-ptq``).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch
from torch import nn

from fsmc.compress.quantization import convert_qat, prepare_qat, quantize_ptq
from fsmc.compress.unstructured import keep_sparsity, make_permanent, sparsity
from fsmc.config import METHOD_DECLARATIONS, RecoverParams
from fsmc.models.checkpoint import quantized_meta
from fsmc.recover.methods import METHODS, RecoveryContext
from fsmc.recover.report import RecoveryReport


def with_method_defaults(params: RecoverParams) -> RecoverParams:
    """``params`` with ``lr: 0`` replaced by the method's own learning rate."""
    if params.lr:
        return params
    return dataclasses.replace(params, lr=METHOD_DECLARATIONS[params.method].learning_rate)


def recover_student(
    student: nn.Module, meta: dict[str, Any], context: RecoveryContext, params: RecoverParams, example: torch.Tensor
) -> tuple[nn.Module, RecoveryReport, dict[str, Any]]:
    """Run ``params.method`` on ``student`` as its scheme requires.

    Returns:
        The recovered model, the report, and the checkpoint meta to save it with.
    """
    student = copy.deepcopy(student)  # the caller's model stays as it was
    scheme = meta.get("scheme")
    out_meta = {**meta, "recovery": params.label}
    if scheme == "unstructured":
        keep_sparsity(student)
    float_student = student
    params = with_method_defaults(params)
    quantize_after = meta.get("quantize_after_recovery")  # "qat" (int8-qat) or "ptq" (<structure>+int8-ptq)
    if quantize_after == "qat":
        student = prepare_qat(student, example)
        # Fake quantization observes float32 only (torch's fused observer refuses bf16 inputs).
        params = dataclasses.replace(params, precision="fp32")
    recovered, report = METHODS[params.method].run(student, context, params)
    if scheme == "unstructured":
        make_permanent(recovered)
        report.notes.append(f"sparsity after recovery: {sparsity(recovered):.6f}")
    if quantize_after == "qat":
        recovered = convert_qat(recovered)
    elif quantize_after == "ptq":  # the shots first, then OOD images up to compress.calibration_images
        room = max(meta["calibration_images"] - len(context.data.images), 0)
        calibration = torch.cat([context.data.images, context.data.ood_images[:room]])
        recovered = quantize_ptq(recovered, calibration)
        report.notes.append(f"int8 PTQ after recovery, calibrated on {len(calibration)} images")
    if quantize_after:
        out_meta = {**out_meta, **quantized_meta(float_student, example)}
        out_meta.pop("quantize_after_recovery")
        out_meta.pop("calibration_images", None)
    return recovered, report, out_meta
