"""Reading a latency record of :func:`fsmc.shipping.measure.measure_speedups` (plain dicts: no torch, so the CLI stays quick)."""

from __future__ import annotations


def median_p90(timing: dict) -> str:
    """``median / p90`` ms of one timing, as the latency tables print it."""
    return f"{timing['median_ms']:.3f} / {timing['p90_ms']:.3f}"


def macs_pace(timed: dict) -> str:
    """One batch's share of the MACs ratio, as the latency tables print it (a dash for records made before it existed)."""
    return f"{timed['macs_pace']:.2f}" if "macs_pace" in timed else "-"


def reference_teacher(timed: dict) -> dict:
    """The teacher timing a batch's compression speed-up is taken against (``timed``: one batch of :func:`measure_speedups`)."""
    return timed[timed["teacher_reference"]]


def reference_label(latency: dict, timed: dict) -> str:
    """Where the compression speed-up's teacher ran: the student's runtime, or the teacher's own faster one."""
    if timed["teacher_reference"] == "teacher_fastest":
        return f"{latency['label']} against the teacher in {latency['teacher_fastest_runtime']}, its fastest here"
    return latency["compression_runtime"]


# Below this share of its MACs ratio a student's speed is bound by something other than its MACs (per-layer overhead
# at batch 1, SIMD lanes that narrow layers leave part-empty): the ResNet-56 headline's width-pruned student reaches
# 0.65 at batch 1 and 0.75 at batch 64 on an AMD EPYC, its block-dropped one 0.98 and 1.02 (benchmarks/LOG.md).
MACS_PACE_FLOOR = 0.8
WIDTH_SCHEMES = ("channel", "channel+int8-ptq")
INT8_ONLY_SCHEMES = ("int8-ptq", "int8-qat")  # the float MACs stay: a pace below 1 is int8 slower than the float teacher
TUNE_HINT = "`fsmc tune --set target.speedup=...` measures every scheme on this CPU."


def with_macs_pace(latency: dict, teacher_macs: int, student_macs: int) -> dict:
    """``latency`` with each batch's ``macs_pace``: its compression speed-up over the MACs ratio (teacher MACs /
    student MACs). 1 is a student exactly as fast as its MACs say; an int8 student, with the float MACs, exceeds it."""
    macs_ratio = teacher_macs / max(student_macs, 1)
    batches = {batch: {**timed, "macs_pace": timed["compression_speedup"] / macs_ratio} for batch, timed in latency["batches"].items()}
    return {**latency, "macs_ratio": macs_ratio, "batches": batches}


def macs_pace_notices(latency: dict, scheme: str) -> list[str]:
    """One line per batch where the student runs well below its MACs ratio, saying so and what pays instead."""
    notices = []
    for batch, timed in latency["batches"].items():
        if timed["macs_pace"] >= MACS_PACE_FLOOR:
            continue
        if scheme in INT8_ONLY_SCHEMES:
            notices.append(
                f"ship: at batch {batch} the int8 student is x{timed['compression_speedup']:.2f} the speed of the float teacher at its "
                f"fastest (student in {latency['label']}): int8 does not pay on this network and CPU (quantize / dequantize steps "
                f"and layers too narrow for the int8 kernels); {TUNE_HINT}"
            )
            continue
        depth = " Removing width pays little here; removing depth does on residual networks (compress.scheme=block-drop)."
        notices.append(
            f"ship: at batch {batch} the compression speed-up is x{timed['compression_speedup']:.2f} where the MACs say "
            f"x{latency['macs_ratio']:.2f} ({timed['macs_pace']:.2f} of it, in {latency['label']}): the student's speed is bound by "
            f"per-layer overhead or part-empty SIMD lanes, not by MACs.{depth if scheme in WIDTH_SCHEMES else ''} {TUNE_HINT}"
        )
    return notices
