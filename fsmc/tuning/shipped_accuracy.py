"""A candidate's accuracy as it ships: in the runtime, precision and threads chosen for it, on the run's test images.

The promotion gate judges the registered student's accuracy as shipped (OpenVINO's bf16 on an AMX CPU moves top-1
by a few hundredths of a point against torch fp32), so the search must judge the same figure: issue 33's fourth
headline search passed block-drop 60 % at 88.14 % in torch fp32 (a drop of 1.50 points, the limit), and the gate
then refused it at 88.12 % as shipped (1.52).
"""

from __future__ import annotations

from pathlib import Path

import torch

from fsmc.atomic import read_json
from fsmc.config import Params
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.evaluation import classification_metrics, stratified_subset
from fsmc.models.checkpoint import load_checkpoint
from fsmc.shipping.selection import RuntimeChoice, runner
from fsmc.shipping.ship import onnx_or_none, predict_in_batches


def accuracy_as_shipped(params: Params, student_model: Path, metrics_file: Path, choice: dict) -> dict:
    """``top1`` and ``worst_class_acc`` of the student in ``student_model`` run as ``choice`` (``RuntimeChoice.to_dict()``).

    The test images are those the ``evaluate`` stage used; ``metrics_file`` (its output) names the classes and the
    minority classes.
    """
    test = stratified_subset(load_dataset(params.data).test, params.evaluate.max_test_images)
    images = to_tensor(test.images, test.pixel_max).numpy()
    student, _, _ = load_checkpoint(student_model)
    runtime = RuntimeChoice(**choice)
    onnx = onnx_or_none(student, torch.from_numpy(images[:1]), [], "student") if runtime.runtime != "torch" else None
    logits = predict_in_batches(runner(runtime, student, onnx), images)
    evaluation = read_json(metrics_file)
    metrics = classification_metrics(test.labels, logits.argmax(1), len(evaluation["classes"]), evaluation["minority_classes"])
    return {"top1": metrics["top1"], "worst_class_acc": metrics["worst_class_acc"]}
