"""What `fsmc run` prints when it finishes: rich tables of teacher vs student, per class, then registry and gate."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from fsmc.shipping.speedups import macs_pace, median_p90, reference_teacher


def _percent(value: float) -> str:
    return f"{100 * value:.2f}"


def print_run_report(result: dict[str, Any]) -> None:
    """The terminal view of a finished ``fsmc run``: teacher vs student, per class, registry and gate."""
    console = Console()
    teacher, student = result["teacher"], result["student"]
    summary = Table(title=f"fsmc run: teacher vs student ({result.get('scheme', 'channel')} + {result['method']})")
    for column in ("metric", "teacher", "student", "student - teacher"):
        summary.add_column(column, justify="right" if column != "metric" else "left")
    for key, label in (
        ("top1", "top-1 %"),
        ("balanced_acc", "balanced acc %"),
        ("macro_f1", "macro-F1 %"),
        ("minority_acc", f"minority acc % ({', '.join(result['minority_classes'])})"),
        ("worst_class_acc", "worst-class acc %"),
    ):
        summary.add_row(label, _percent(teacher[key]), _percent(student[key]), f"{100 * (student[key] - teacher[key]):+.2f}")
    for key in ("params", "macs", "bytes"):
        label = "bytes on disk" if key == "bytes" else key
        summary.add_row(label, f"{teacher[key]:,}", f"{student[key]:,}", f"x{student[key] / teacher[key]:.3f}")
    console.print(summary)

    per_class = Table(title="per-class test accuracy % (* = minority)")
    for column in ("class", "shots", "teacher", "student", "gap"):
        per_class.add_column(column, justify="right")
    minority = set(result["minority_classes"])
    for i, name in enumerate(result["classes"]):
        gap = student["per_class_gap"][i]
        style = "red" if gap < -0.02 else None
        per_class.add_row(
            f"{name}{'*' if name in minority else ''}",
            str(result["few_shot_counts"][i]),
            _percent(teacher["per_class"][i]),
            _percent(student["per_class"][i]),
            f"{100 * gap:+.2f}",
            style=style,
        )
    console.print(per_class)
    print_latency(console, result["promotion"]["shipped"])
    model = result["registered_model"]
    console.print(
        f"registered [bold]{model['name']}[/] version {model['version']} (MLflow run {result['mlflow_run_id']}); "
        f"outputs in {result['workspace']}; {result['wall_seconds']:.1f} s"
        + (f"; reused from the stage cache: {', '.join(result['stages_reused'])}" if result["stages_reused"] else "")
    )
    promotion = result["promotion"]
    speed = (
        f"compression speed-up x{promotion['speedup']:.2f} at batch {promotion['batch']} in {promotion['runtime']} "
        f"({promotion['teacher_ms']:.2f} -> {promotion['student_ms']:.2f} ms)"
    )
    if promotion["passed"]:
        console.print(f"[green]gate passed[/]: version {model['version']} is now @{promotion['alias']}; {speed}")
    else:
        holder = f"version {promotion['alias_holder']}" if promotion["alias_holder"] else "no version"
        console.print(f"[yellow]gate failed[/]: {'; '.join(promotion['reasons'])}; {speed}. @{promotion['alias']} stays on {holder}.")


def print_latency(console: Console, shipped: dict[str, Any]) -> None:
    """The latency a user will see: the teacher (torch eager, in the student's runtime, at its fastest) against the shipped student."""
    latency = shipped["latency"]
    table = Table(
        title=f"latency, median / p90 ms: student shipped in {latency['label']}",
        caption=f"{latency['cpu']}; {latency['cpu_flags']}; torch eager: {latency['torch_threads']} threads; the teacher's fastest "
        f"configuration here: {latency['teacher_fastest_runtime']}. compression: the shipped student against the teacher at its "
        "fastest; of MACs: the share of the MACs ratio (teacher / student) the compression speed-up reaches; deployment: against "
        "the teacher in torch eager.",
    )
    for column in ("batch", "teacher, torch eager", "teacher, same runtime", "teacher, fastest", "student, shipped", "compression", "of MACs", "deployment"):
        table.add_column(column, justify="right")
    for batch, timed in latency["batches"].items():
        cells = [median_p90(timed[k]) for k in ("teacher_eager", "teacher_same_runtime")]
        cells += [median_p90(reference_teacher(timed)), median_p90(timed["student_shipped"])]
        table.add_row(batch, *cells, f"x{timed['compression_speedup']:.2f}", macs_pace(timed), f"x{timed['deployment_speedup']:.2f}")
    console.print(table)
    accuracy = shipped["accuracy"]
    console.print(
        f"shipped student: top-1 {_percent(accuracy['top1'])} % ({100 * accuracy['top1_vs_fp32']:+.2f} against torch fp32, "
        f"{_percent(accuracy['agreement_with_fp32'])} % of predictions the same)"
    )
