"""Ship a run's student: choose its runtime on this CPU, write it as shipped, and measure what a user will see.

The worker behind promotion (``tasks.shipping``): it runs after the pipeline's stages, on the machine that
registers the student, because a runtime's speed belongs to the CPU it is measured on, and so its outputs
(``ship/``) are not part of the sealed, byte-identical record of the run.
"""

from __future__ import annotations

import numpy as np
import torch

from fsmc.atomic import read_json, write_bytes, write_json
from fsmc.config import Params
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.evaluation import classification_metrics, stratified_subset
from fsmc.export import to_onnx
from fsmc.models.checkpoint import load_checkpoint
from fsmc.shipping.cpu_load import OtherLoad, load_notice, wait_until_quiet
from fsmc.shipping.measure import measure_speedups
from fsmc.shipping.selection import RuntimeChoice, agreement, choose_runtime, torch_runner
from fsmc.shipping.shipped_model import MODEL_FILE, ShippedModel
from fsmc.shipping.speedups import macs_pace_notices, with_macs_pace
from fsmc.workspace import Workspace

AGREEMENT_IMAGES = 512  # test images each candidate runtime must agree with torch on (the whole split is evaluated later)


def onnx_or_none(model: torch.nn.Module, example: torch.Tensor, notices: list[str], role: str) -> bytes | None:
    """``model``'s ONNX bytes, or None with a notice when it cannot be exported (a user's model may not be)."""
    try:
        return to_onnx(model, example)
    except Exception as error:  # any exporter failure means "not in an ONNX runtime", never a failed run
        notices.append(f"ship: the {role} could not be exported to ONNX ({type(error).__name__}: {str(error)[:160]}).")
        return None


def predict_in_batches(predict, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Logits of ``predict`` over ``images`` in batches."""
    return np.concatenate([predict(images[start : start + batch_size]) for start in range(0, len(images), batch_size)])


def choose_and_measure(
    teacher: torch.nn.Module, student: torch.nn.Module, images: np.ndarray, params: Params, teacher_choice: RuntimeChoice | None = None,
    labels: np.ndarray | None = None,
) -> dict:
    """The student's runtime chosen on this CPU, and both speed-ups measured at batch 1 and ``gate.latency_batch``.

    ``teacher_choice``: the teacher's own fastest configuration when already chosen (a search times many students
    against one teacher); chosen here when None. ``labels`` of ``images``: a runtime that flips more near-ties than
    ``ship.min_agreement`` allows is still kept when no less accurate on them (:func:`choose_runtime`). Returns
    ``{"choice", "teacher_choice", "candidates", "latency", "onnx", "notices"}`` (``onnx``: both models' ONNX bytes or None).
    """
    notices: list[str] = []
    example = torch.from_numpy(images[:1])
    onnx = {"student": onnx_or_none(student, example, notices, "student"), "teacher": onnx_or_none(teacher, example, notices, "teacher")}
    # Chosen at ship.batch; fewer threads only where they also hold at the gate's batch.
    gate_batch = params.gate.latency_batch
    shown = labels[:AGREEMENT_IMAGES] if labels is not None else None
    choice, candidates, chosen_notices = choose_runtime(student, onnx["student"], images[:AGREEMENT_IMAGES], params.ship, gate_batch, shown)
    # The teacher's own fastest configuration too: a student is only faster than the teacher a user could ship.
    if teacher_choice is None:
        teacher_choice, _, _ = choose_runtime(teacher, onnx["teacher"], images[:AGREEMENT_IMAGES], params.ship, gate_batch, shown)
    batches = tuple(sorted({1, gate_batch}))
    latency = measure_speedups(teacher, student, choice, onnx, images, batches, params.ship.timing_seconds, teacher_choice)
    return {
        "choice": choice, "teacher_choice": teacher_choice, "candidates": candidates, "latency": latency, "onnx": onnx,
        "notices": notices + chosen_notices,
    }  # fmt: skip


def ship(params: Params, ws: Workspace) -> dict:
    """Choose, write (``ws.shipped_model``) and measure the shipped student; write and return ``ws.ship_report``.

    The report holds the choice and every candidate measured, the shipped student's accuracy on the run's
    test images in its own runtime and precision (beside torch fp32's), and both speed-ups at batch 1 and at
    ``gate.latency_batch`` with the share of the MACs ratio each compression speed-up reaches, the CPU and thread
    counts, and the share of the CPU other processes took while it was timed.
    """
    teacher, _, _ = load_checkpoint(ws.teacher_model)
    student, _, _ = load_checkpoint(ws.student_model)
    test = stratified_subset(load_dataset(params.data).test, params.evaluate.max_test_images)
    images = to_tensor(test.images, test.pixel_max).numpy()
    # The runtime and its thread count are chosen by timing: first let other processes (a Prefect server still
    # busy with the run's events, a neighbour) settle, and measure what they take meanwhile.
    waited_share = wait_until_quiet()
    with OtherLoad() as load:
        measured = choose_and_measure(teacher, student, images, params, labels=test.labels)
    choice = measured["choice"]
    if choice.runtime != "torch":
        write_bytes(ws.shipped_model / MODEL_FILE, measured["onnx"]["student"])
    write_json(ws.shipped_runtime, choice.to_dict())  # last: a folder with its config is complete
    shipped_predict = ShippedModel(ws.shipped_model).predict if choice.runtime != "torch" else torch_runner(student)
    shipped_logits = predict_in_batches(shipped_predict, images)
    evaluation = read_json(ws.metrics)
    shipped = classification_metrics(test.labels, shipped_logits.argmax(1), len(evaluation["classes"]), evaluation["minority_classes"])
    shipped["agreement_with_fp32"] = agreement(shipped_logits, predict_in_batches(torch_runner(student), images))
    shipped["top1_vs_fp32"] = shipped["top1"] - evaluation["student"]["top1"]
    # How much of the MACs removed the speed-up turned into time, and where it did not, why and what would.
    latency = with_macs_pace(measured["latency"], evaluation["teacher"]["macs"], evaluation["student"]["macs"])
    latency["other_cpu_share"] = load.share
    report = {
        "choice": choice.to_dict(),
        "candidates": measured["candidates"],
        "accuracy": shipped,
        "latency": latency,
        "gate_batch": params.gate.latency_batch,
        "notices": measured["notices"] + load_notice(load.share, waited_share) + macs_pace_notices(latency, params.compress.scheme),
    }
    write_json(ws.ship_report, report)
    return report
