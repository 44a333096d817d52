"""ONNX export of a student (pruned, sparse or int8), checked against torch with onnxruntime.

torch's TorchScript-based exporter (``dynamo=False``) is used on purpose: it exports
the int8 FX graph in ONNX's QDQ form (int8 weights with QuantizeLinear /
DequantizeLinear around each op, which onnxruntime fuses into int8 kernels), where
the torch.export-based exporter of torch 2.14 cannot export quantized FX graphs at all.
The batch axis is dynamic.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from torch import nn

from fsmc.atomic import write_bytes
from fsmc.errors import FsmcError

OPSET = 17


def to_onnx(model: nn.Module, example: torch.Tensor) -> bytes:
    """The ONNX bytes of ``model`` (eval mode, CPU) traced on ``example`` (input ``images``, output ``logits``)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.cpu().eval(), (example[:1].cpu(),), buffer, dynamo=False, opset_version=OPSET,
            input_names=["images"], output_names=["logits"], dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
        )
    return buffer.getvalue()


def compare_with_torch(onnx_bytes: bytes, model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> dict[str, float]:
    """Run the ONNX model in onnxruntime and torch on ``images``: max |logit difference| and prediction agreement."""
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    onnx_logits, torch_logits = [], []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].cpu()
            onnx_logits.append(session.run(["logits"], {"images": batch.numpy()})[0])
            torch_logits.append(model(batch).float().numpy())
    ours, theirs = np.concatenate(onnx_logits), np.concatenate(torch_logits)
    return {
        "images": int(len(images)),
        "max_abs_diff": float(np.abs(ours - theirs).max()),
        "prediction_agreement": float((ours.argmax(1) == theirs.argmax(1)).mean()),
    }


def export_onnx(model: nn.Module, images: torch.Tensor, path, min_agreement: float = 0.98) -> dict[str, float]:
    """Export ``model`` to ``path`` (atomically) after checking it on ``images``; returns the check.

    Raises:
        FsmcError: when onnxruntime disagrees with torch on more than ``1 - min_agreement`` of the images.
    """
    onnx_bytes = to_onnx(model, images)
    check = compare_with_torch(onnx_bytes, model, images)
    if check["prediction_agreement"] < min_agreement:
        raise FsmcError(
            f"The ONNX export agrees with torch on only {100 * check['prediction_agreement']:.2f} % of {check['images']} test "
            f"images (max |logit diff| {check['max_abs_diff']:.4g}); nothing was written to {path}."
        )
    write_bytes(path, onnx_bytes)
    return check
