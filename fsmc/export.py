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

from fsmc.atomic import read_json, write_bytes, write_json
from fsmc.config import load_params
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.errors import FsmcError
from fsmc.evaluation import stratified_subset
from fsmc.models.checkpoint import load_checkpoint
from fsmc.workspace import Workspace

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


def export_run(ws: Workspace) -> dict[str, float]:
    """Export the student of run folder ``ws`` to ``ws.onnx_model``, checked on its run's test split; write and return the check.

    The check uses the test images the run evaluated on (``evaluate.max_test_images``, stratified), so
    the agreement it reports is on the images the student's metrics came from. It names the runtime the run
    shipped the student in (``shipped_runtime``), the one to run the file in.
    """
    params = load_params(ws.run_params)
    student, _, _ = load_checkpoint(ws.student_model)
    test = stratified_subset(load_dataset(params.data).test, params.evaluate.max_test_images)
    check = export_onnx(student, to_tensor(test.images, test.pixel_max), ws.onnx_model)
    if ws.shipped_runtime.is_file():  # the runtime, precision and threads the run measured fastest for this file
        check["shipped_runtime"] = read_json(ws.shipped_runtime)
    write_json(ws.onnx_check, check)
    return check
