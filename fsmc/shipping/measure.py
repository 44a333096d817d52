"""The shipped student's latency beside the teacher's, at each batch a user reads: two speed-ups, never one.

* compression speed-up: the shipped student against the teacher at its fastest on this CPU: in the student's
  runtime, precision and threads, or in the teacher's own fastest configuration when that is faster still (an
  int8 student may ship in a runtime where the float teacher is slow; against that teacher alone it would look
  faster than a teacher the user could ship instead). What compressing bought; the gate applies this one.
* deployment speed-up: the student as shipped against the teacher as the user ran it (torch eager fp32):
  what switching to fsmc's student buys in production.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fsmc.cpu_info import cpu_flags, cpu_model
from fsmc.models.int8_graph import is_quantized
from fsmc.shipping.latency import time_alternately, timed_batch
from fsmc.shipping.selection import RuntimeChoice, runner, torch_runner


def measure_speedups(
    teacher: nn.Module,
    student: nn.Module,
    choice: RuntimeChoice,
    onnx: dict[str, bytes | None],
    images: np.ndarray,
    batches: tuple[int, ...],
    timing_seconds: float = 2.0,
    teacher_choice: RuntimeChoice | None = None,
) -> dict:
    """Median and p90 latency of the teacher (torch eager, in ``choice``, in ``teacher_choice``) and the shipped student, per batch.

    ``onnx`` holds the ONNX bytes of ``teacher`` and ``student`` (None where the export failed: the
    teacher then stays in torch eager for both speed-ups, and the record says so). ``teacher_choice`` is the
    teacher's own fastest configuration (:func:`fsmc.shipping.selection.choose_runtime` on the teacher); each
    batch's ``teacher_reference`` names the faster of the teacher's timings, the compression speed-up's baseline.
    """
    notes = []
    teacher_eager = torch_runner(teacher)
    student_shipped = runner(choice, student, onnx["student"])
    same_runtime = choice
    try:
        teacher_shipped = runner(choice, teacher, onnx["teacher"])
    except Exception as error:  # the user's teacher may not export: compare both in torch eager instead
        notes.append(f"the teacher does not run in {choice.label} ({type(error).__name__}); compression speed-up in torch eager")
        same_runtime = RuntimeChoice("torch", "fp32", torch.get_num_threads())
        teacher_shipped, student_shipped_same = teacher_eager, torch_runner(student)
    else:
        student_shipped_same = student_shipped
    teacher_fastest = None
    if teacher_choice is not None and teacher_choice != same_runtime:
        teacher_fastest = runner(teacher_choice, teacher, onnx["teacher"])
    per_batch = {}
    for size in batches:
        batch = timed_batch(images, size)
        calls = {
            "teacher_eager": lambda: teacher_eager(batch),
            "teacher_same_runtime": lambda: teacher_shipped(batch),
            "student_shipped": lambda: student_shipped(batch),
        }
        if student_shipped_same is not student_shipped:
            calls["student_same_runtime"] = lambda: student_shipped_same(batch)
        if teacher_fastest is not None:
            calls["teacher_fastest"] = lambda: teacher_fastest(batch)
        timed = {name: latency.to_dict() for name, latency in time_alternately(calls, size, timing_seconds).items()}
        same = timed.get("student_same_runtime", timed["student_shipped"])
        teachers = [name for name in ("teacher_same_runtime", "teacher_fastest") if name in timed]
        timed["teacher_reference"] = min(teachers, key=lambda name: timed[name]["median_ms"])
        timed["compression_speedup"] = timed[timed["teacher_reference"]]["median_ms"] / same["median_ms"]
        timed["deployment_speedup"] = timed["teacher_eager"]["median_ms"] / timed["student_shipped"]["median_ms"]
        per_batch[str(size)] = timed
    return {
        "runtime": choice.to_dict(),
        # An int8 model runs its float remainder at the runtime's precision: say which model the runtime ran.
        "label": choice.label + (" (int8 model)" if is_quantized(student) else ""),
        "compression_runtime": same_runtime.label,
        "teacher_fastest_runtime": teacher_choice.label if teacher_fastest is not None else same_runtime.label,
        "torch_threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "batches": per_batch,
        "notes": notes,
    }
