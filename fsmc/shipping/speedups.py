"""Reading a latency record of :func:`fsmc.shipping.measure.measure_speedups` (plain dicts: no torch, so the CLI stays quick)."""

from __future__ import annotations


def median_p90(timing: dict) -> str:
    """``median / p90`` ms of one timing, as the latency tables print it."""
    return f"{timing['median_ms']:.3f} / {timing['p90_ms']:.3f}"


def reference_teacher(timed: dict) -> dict:
    """The teacher timing a batch's compression speed-up is taken against (``timed``: one batch of :func:`measure_speedups`)."""
    return timed[timed["teacher_reference"]]


def reference_label(latency: dict, timed: dict) -> str:
    """Where the compression speed-up's teacher ran: the student's runtime, or the teacher's own faster one."""
    if timed["teacher_reference"] == "teacher_fastest":
        return f"{latency['label']} against the teacher in {latency['teacher_fastest_runtime']}, its fastest here"
    return latency["compression_runtime"]
