"""int8 post-training quantization of a real CIFAR-10 ResNet: smaller, int8 kernels, same predictions."""

from __future__ import annotations

import dataclasses

import pytest

from fsmc.data.images import to_tensor
from fsmc.models.checkpoint import load_checkpoint
from fsmc.models.int8_graph import runs_int8_kernels
from fsmc.runtime import predict_logits
from fsmc.stages import STAGES, evaluate
from fsmc.workspace import Workspace

pytestmark = pytest.mark.slow


def test_int8_ptq_resnet_is_smaller_runs_int8_and_agrees_with_fp32(cifar_params, tmp_path):
    params = dataclasses.replace(
        cifar_params,
        data=dataclasses.replace(cifar_params.data, teacher="resnet56-jpeg"),
        compress=dataclasses.replace(cifar_params.compress, scheme="int8-ptq"),
        recover=dataclasses.replace(cifar_params.recover, method="none", oe=False),
    )
    ws = Workspace(tmp_path)
    for stage in ("record_inputs", "sample_few_shot", "teacher", "curate_ood", "validate", "compress", "recover"):
        STAGES[stage](params, ws)
    fp32, _, _ = load_checkpoint(ws.teacher_model)
    int8, _, meta = load_checkpoint(ws.student_model)
    assert ws.teacher_model.stat().st_size >= 3.5 * ws.student_model.stat().st_size
    from fsmc.data.sources import load_dataset
    from fsmc.evaluation import stratified_subset

    test = stratified_subset(load_dataset(params.data).test, 1000)
    images = to_tensor(test.images, test.pixel_max)
    assert runs_int8_kernels(int8, images[:2]) and not runs_int8_kernels(fp32, images[:2])
    agreement = float((predict_logits(int8, images).argmax(1) == predict_logits(fp32, images).argmax(1)).float().mean())
    assert agreement >= 0.98, agreement
    metrics = evaluate.run(params, ws)
    assert abs(metrics["student"]["top1"] - metrics["teacher"]["top1"]) < 0.02
