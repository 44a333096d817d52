"""Prefect task: choose the student's runtime on this machine, write it as shipped, measure both speed-ups."""

from __future__ import annotations

from prefect import task
from prefect.logging import get_run_logger

from fsmc.config import Params
from fsmc.shipping.ship import ship
from fsmc.shipping.speedups import macs_pace, median_p90, reference_teacher
from fsmc.workspace import Workspace


@task(name="ship_student")
def ship_task(params: Params, ws: Workspace) -> dict:
    """:func:`fsmc.shipping.ship.ship`, with each notice (a runtime left out, and why) as a one-line warning."""
    report = ship(params, ws)
    logger = get_run_logger()
    for notice in report["notices"]:
        logger.warning(notice)
    return report


def latency_metrics(report: dict) -> dict[str, float]:
    """MLflow metrics of a ship report: per batch, each model's median and p90 ms, both speed-ups and the MACs pace; the
    share of the CPU other processes took while it was timed; shipped accuracy."""
    metrics: dict[str, float] = {}
    for batch, timed in report["latency"]["batches"].items():
        for name, value in timed.items():
            if isinstance(value, dict):
                metrics[f"latency.b{batch}.{name}.median_ms"] = value["median_ms"]
                metrics[f"latency.b{batch}.{name}.p90_ms"] = value["p90_ms"]
            elif isinstance(value, float | int):  # the speed-ups; teacher_reference, a name, stays in the ship report
                metrics[f"latency.b{batch}.{name}"] = float(value)
    if report["latency"].get("other_cpu_share") is not None:
        metrics["latency.other_cpu_share"] = float(report["latency"]["other_cpu_share"])
    accuracy = report["accuracy"]
    metrics |= {f"shipped.{key}": float(accuracy[key]) for key in ("top1", "worst_class_acc", "agreement_with_fp32", "top1_vs_fp32")}
    return metrics


def latency_table(report: dict) -> str:
    """A Markdown table of the latency a user will see, for the run's and the version's description."""
    latency = report["latency"]
    lines = [
        f"Shipped in **{latency['label']}** (chosen by measuring on {latency['cpu']}; flags {latency['cpu_flags']}); "
        f"torch eager with {latency['torch_threads']} threads; the teacher at its fastest here: {latency['teacher_fastest_runtime']}. "
        "Compression speed-up: against the teacher at its fastest; of MACs ratio: the share of teacher MACs / student MACs "
        + (f"(x{latency['macs_ratio']:.2f}) " if "macs_ratio" in latency else "")
        + "it reaches. Median / p90 ms.\n",
        "| batch | teacher, torch eager | teacher, same runtime | teacher, fastest | student, shipped | compression speed-up | "
        "of MACs ratio | deployment speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for batch, t in latency["batches"].items():
        cells = [median_p90(t[k]) for k in ("teacher_eager", "teacher_same_runtime")] + [median_p90(reference_teacher(t)), median_p90(t["student_shipped"])]
        lines.append(f"| {batch} | {' | '.join(cells)} | x{t['compression_speedup']:.2f} | {macs_pace(t)} | x{t['deployment_speedup']:.2f} |")
    accuracy = report["accuracy"]
    lines.append(
        f"\nShipped student top-1 {100 * accuracy['top1']:.2f} % ({100 * accuracy['top1_vs_fp32']:+.2f} points against torch fp32; "
        f"{100 * accuracy['agreement_with_fp32']:.2f} % of predictions the same)."
    )
    return "\n".join(lines) + "\n"
