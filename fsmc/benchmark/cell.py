"""One benchmark cell: the whole pipeline in its own folder, through the stage cache, as one result row."""

from __future__ import annotations

import time

import numpy as np

from fsmc.atomic import read_json
from fsmc.config import Params
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.evaluation import ACCURACY_METRICS, COST_METRICS
from fsmc.models.checkpoint import load_checkpoint
from fsmc.pipeline import run_pipeline
from fsmc.shipping.selection import RuntimeChoice
from fsmc.shipping.ship import AGREEMENT_IMAGES, choose_and_measure
from fsmc.shipping.speedups import reference_teacher
from fsmc.stage_cache import run_stage
from fsmc.stages import CACHED_PIPELINE, STAGES
from fsmc.stages.recover import warm_teacher_outputs
from fsmc.workspace import Workspace

# What a row keeps of each model's evaluation (per-class lists stay in results.json).
_METRICS = (*ACCURACY_METRICS, *COST_METRICS)


def run_cell(params: Params, ws: Workspace, reuse: bool = True) -> dict:
    """Run every stage into ``ws`` (finished stages with the same inputs come from the stage cache).

    Returns:
        The cell's row: teacher and student metrics, per-class accuracy, head vs minority accuracy,
        which stages were reused and the wall time.
    """
    started = time.perf_counter()
    reused = run_pipeline(params, ws, reuse)
    return cell_row(ws, reused, time.perf_counter() - started)


def prepare_teacher(params: Params, ws: Workspace) -> None:
    """Run the ``teacher`` stage into the stage cache (it reads only the raw inputs)."""
    STAGES["record_inputs"](params, ws)
    run_stage("teacher", STAGES["teacher"], params, ws)


def prepare_shared(params: Params, ws: Workspace, with_features: list[bool]) -> None:
    """Run the stages cells share (up to ``compress``) and the teacher's outputs once, into the caches.

    Cells that differ only in recovery then find all of it in the stage and teacher-output caches
    instead of computing it at the same time on several workers.
    """
    run_pipeline(params, ws, stop_before="recover")
    for features in sorted(set(with_features)):
        warm_teacher_outputs(params, ws, features)


def cell_row(ws: Workspace, reused: list[str], wall_seconds: float) -> dict:
    """The result row of a finished cell folder."""
    metrics = read_json(ws.metrics)
    minority = set(metrics["minority_classes"])
    row: dict = {"stages_reused": reused, "all_reused": len(reused) == len(CACHED_PIPELINE), "wall_seconds": round(wall_seconds, 3)}
    for role in ("teacher", "student"):
        result = metrics[role]
        row.update({f"{role}_{key}": result[key] for key in _METRICS})
        row[f"{role}_per_class"] = result["per_class"]
        head = [acc for c, acc in enumerate(result["per_class"]) if c not in minority]
        row[f"{role}_head_acc"] = float(np.mean(head)) if head else float("nan")
    row["classes"] = metrics["classes"]
    row["minority_classes"] = metrics["minority_class_names"]
    row["few_shot_counts"] = metrics["few_shot_counts"]
    return row


def architecture_latency(params: Params, ws: Workspace, teacher_choice: dict | None = None) -> dict:
    """The cell's teacher and student as fsmc ships them (:mod:`fsmc.shipping`): median ms and compression speed-up
    at ``gate.latency_batch`` and at batch 1, in the runtime chosen for the student on this CPU.

    ``teacher_choice``: the ``teacher_runtime_choice`` of an earlier call with the same teacher (not chosen again).
    """
    teacher, _, _ = load_checkpoint(ws.teacher_model)
    student, _, _ = load_checkpoint(ws.student_model)
    test = load_dataset(params.data).test
    images = to_tensor(test.images[:AGREEMENT_IMAGES], test.pixel_max).numpy()
    known = RuntimeChoice(**teacher_choice) if teacher_choice else None
    measured = choose_and_measure(teacher, student, images, params, known, test.labels[:AGREEMENT_IMAGES])
    batches = measured["latency"]["batches"]
    at_gate, at_one = batches[str(params.gate.latency_batch)], batches["1"]
    return {
        "teacher_ms": reference_teacher(at_gate)["median_ms"],
        "student_ms": at_gate["student_shipped"]["median_ms"],
        "speedup": at_gate["compression_speedup"],
        "student_ms_b1": at_one["student_shipped"]["median_ms"],
        "speedup_b1": at_one["compression_speedup"],
        "deployment_speedup_b1": at_one["deployment_speedup"],
        "runtime": measured["latency"]["label"],
        "runtime_choice": measured["choice"].to_dict(),
        "teacher_runtime_choice": measured["teacher_choice"].to_dict(),
    }
