"""The candidates' speed-ups timed side by side: the teacher and every candidate alternately, in one call.

Each candidate is first timed on its own, beside the teacher, when its runtime is chosen
(:func:`fsmc.benchmark.cell.architecture_latency`). On a shared machine the teacher's time wanders between those
calls: the headline search timed the same block-drop 60 % student at x1.59, x1.87 and x3.21 in three searches (the
teacher at 0.52 ms in one, 1.06 ms in another), so candidates near the target's edge were ranked by the moment
they were timed. One alternating call gives every candidate the same teacher and the same moments.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from fsmc.config import Params
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.models.checkpoint import load_checkpoint
from fsmc.shipping.latency import time_alternately, timed_batch
from fsmc.shipping.selection import RuntimeChoice, choose_runtime, runner
from fsmc.shipping.ship import AGREEMENT_IMAGES, onnx_or_none

TEACHER = "teacher"


def time_side_by_side(
    teacher: nn.Module,
    teacher_choices: list[RuntimeChoice],
    students: dict[str, tuple[nn.Module, RuntimeChoice]],
    onnx: dict[str, bytes | None],
    images: np.ndarray,
    batch: int,
    seconds_per_model: float,
) -> dict[str, dict]:
    """Compression speed-up of each of ``students`` at ``batch``, all timed alternately with the teacher.

    ``students`` maps a key to the student module and the configuration it ships in; ``onnx`` holds the ONNX bytes
    of each key and of :data:`TEACHER` (None: that model runs in torch only). The teacher is timed in each of
    ``teacher_choices`` (its own fastest configuration, and the students' where it can run there); the fastest
    of those is every speed-up's reference, as in :func:`fsmc.shipping.measure.measure_speedups`.
    Returns ``{key: {"speedup", "teacher_ms", "student_ms"}}``.
    """
    batch_images = timed_batch(images, batch)
    calls = {}
    for choice in dict.fromkeys(teacher_choices):
        if choice.runtime == "torch" or onnx[TEACHER] is not None:
            run = runner(choice, teacher, onnx[TEACHER])
            calls[(TEACHER, choice)] = lambda run=run: run(batch_images)
    for key, (student, choice) in students.items():
        run = runner(choice, student, onnx[key])
        calls[(key, choice)] = lambda run=run: run(batch_images)
    with torch.inference_mode():
        timed = time_alternately(calls, batch, seconds_per_model * len(calls))
    teacher_ms = min(latency.median_ms for (key, _), latency in timed.items() if key == TEACHER)
    return {
        key: {"speedup": teacher_ms / latency.median_ms, "teacher_ms": teacher_ms, "student_ms": latency.median_ms}
        for (key, _), latency in timed.items()
        if key != TEACHER
    }


def candidates_side_by_side(
    params: Params, teacher_model: Path, students: dict[str, tuple[Path, dict]], teacher_choice: dict | None = None
) -> dict[str, dict]:
    """:func:`time_side_by_side` for checkpoints: the teacher's, and each candidate's with the configuration chosen for it.

    ``students`` maps a key to the candidate's student checkpoint and its runtime choice (``RuntimeChoice.to_dict()``).
    Timed at ``gate.latency_batch`` (``fsmc tune`` sets it to ``target.batch``) on the test split's first images, the
    teacher in its own fastest configuration on this CPU (``teacher_choice``, or chosen here when None) and in each
    candidate's.
    """
    test = load_dataset(params.data).test
    images = to_tensor(test.images[:AGREEMENT_IMAGES], test.pixel_max).numpy()
    example = torch.from_numpy(images[:1])
    notices: list[str] = []  # an export failure here was already reported when the candidate was first timed
    teacher, _, _ = load_checkpoint(teacher_model)
    onnx = {TEACHER: onnx_or_none(teacher, example, notices, "teacher")}
    modules = {}
    for key, (checkpoint, choice) in students.items():
        student, _, _ = load_checkpoint(checkpoint)
        onnx[key] = onnx_or_none(student, example, notices, "student") if choice["runtime"] != "torch" else None
        modules[key] = (student, RuntimeChoice(**choice))
    fastest = RuntimeChoice(**teacher_choice) if teacher_choice else choose_runtime(teacher, onnx[TEACHER], images, params.ship, params.gate.latency_batch)[0]
    teacher_choices = [fastest, *(choice for _, choice in modules.values())]
    return time_side_by_side(teacher, teacher_choices, modules, onnx, images, params.gate.latency_batch, params.ship.timing_seconds)
