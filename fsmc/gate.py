"""The promotion gate: is a compressed student fair to every class, and faster, than its teacher?

Pure decision logic plus the latency measurement it needs; the registry side
(alias, tags, transaction) lives in ``tasks.promotion``. Latency is measured at
promotion time, not in ``evaluate``, so that ``evaluate/metrics.json`` stays
byte-identical across runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from fsmc.config import GateParams


def cpu_latency(model: nn.Module, batch: torch.Tensor, rounds: int = 10) -> float:
    """Best-of-``rounds`` seconds of one forward pass of ``batch`` on CPU (after 2 warm-up passes)."""
    model = model.cpu().eval()
    with torch.inference_mode():
        for _ in range(2):
            model(batch)
        best = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            model(batch)
            best = min(best, time.perf_counter() - start)
    return best


def measure_speedup(teacher: nn.Module, student: nn.Module, batch: torch.Tensor, rounds: int = 10) -> dict[str, float]:
    """Teacher and student CPU latency (ms, measured alternately) and the speed-up ``teacher / student``."""
    best_teacher = best_student = float("inf")
    for _ in range(2):  # alternate, so a burst of other load hits both
        best_teacher = min(best_teacher, cpu_latency(teacher, batch, rounds))
        best_student = min(best_student, cpu_latency(student, batch, rounds))
    return {
        "teacher_ms": round(1000 * best_teacher, 4),
        "student_ms": round(1000 * best_student, 4),
        "speedup": best_teacher / best_student,
        "batch": len(batch),
    }


@dataclass(frozen=True)
class GateDecision:
    """Whether the student passes, why not if it fails, and the measured values."""

    passed: bool
    reasons: list[str] = field(default_factory=list)
    measured: dict[str, float] = field(default_factory=dict)


# Accuracy drops are compared at this many decimals: a difference of two accuracies carries float error (0.8964 -
# 0.8814 = 0.015000000000000013), which failed a student that lost exactly the 1.50 points allowed; no test split
# resolves a millionth.
DROP_DECIMALS = 6


def accuracy_drop(teacher: float, student: float) -> float:
    """Teacher minus student accuracy (fractions), rounded to :data:`DROP_DECIMALS`: what every limit is compared with."""
    return round(teacher - student, DROP_DECIMALS)


def decide(metrics: dict, speedup: float, gate: GateParams, where: str = "") -> GateDecision:
    """Apply the three limits of ``gate`` to ``evaluate/metrics.json`` and a measured speed-up (``where``: how it was measured)."""
    teacher, student = metrics["teacher"], metrics["student"]
    top1_drop = accuracy_drop(teacher["top1"], student["top1"])
    worst_drop = accuracy_drop(teacher["worst_class_acc"], student["worst_class_acc"])
    reasons = []
    if top1_drop > gate.max_top1_drop:
        reasons.append(f"top-1 dropped {100 * top1_drop:.2f} points (limit {100 * gate.max_top1_drop:.2f})")
    if worst_drop > gate.max_worst_class_drop:
        reasons.append(
            f"worst-class accuracy dropped {100 * worst_drop:.2f} points (limit {100 * gate.max_worst_class_drop:.2f})"
        )
    if speedup < gate.min_speedup:
        reasons.append(f"speed-up x{speedup:.2f}{f' ({where})' if where else ''} is below the minimum x{gate.min_speedup:.2f}")
    measured = {"top1_drop": top1_drop, "worst_class_drop": worst_drop, "speedup": speedup}
    return GateDecision(passed=not reasons, reasons=reasons, measured=measured)
