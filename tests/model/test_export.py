"""ONNX round trip: a pruned and an int8 student export, reload in onnxruntime and agree with torch."""

from __future__ import annotations

import dataclasses
import shutil

import onnx
import pytest

from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.export import export_onnx
from fsmc.models.checkpoint import load_checkpoint
from fsmc.stages import compress, recover, teacher
from fsmc.workspace import Workspace


@pytest.mark.parametrize(("scheme", "method", "max_diff"), [("channel", "kd", 1e-4), ("int8-ptq", "none", 0.5)])
def test_student_exports_to_onnx_and_agrees_with_torch(data_workspace, small_params, tmp_path, scheme, method, max_diff):
    params = dataclasses.replace(
        small_params,
        compress=dataclasses.replace(small_params.compress, scheme=scheme),
        recover=dataclasses.replace(small_params.recover, method=method, oe=False, steps=40),
    )
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(data_workspace.root, ws.root)
    for stage in (teacher, compress, recover):
        stage.run(params, ws)
    student, _, _ = load_checkpoint(ws.student_model)
    test = load_dataset(params.data).test
    check = export_onnx(student, to_tensor(test.images, test.pixel_max), ws.onnx_model)
    assert check["images"] == len(test) and check["prediction_agreement"] >= 0.99
    assert check["max_abs_diff"] < max_diff  # float: exact to rounding; int8: within a few quantization steps
    graph = onnx.load(ws.onnx_model)
    ops = {node.op_type for node in graph.graph.node}
    # The int8 model stays int8 in ONNX: QDQ format (int8 weights, QuantizeLinear/DequantizeLinear around each op).
    assert ("DequantizeLinear" in ops) == (scheme == "int8-ptq")
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"  # any batch size
