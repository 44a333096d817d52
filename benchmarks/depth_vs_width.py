"""Students of several run folders against their common teacher, in one runtime, at batch 1 and 64 (issue 32, goal 4).

Depth (``compress.scheme=block-drop``) against width (``channel`` at any ratio): each folder's student and the
teacher are timed alternately in one process (fsmc.shipping.latency.time_alternately: median and p90 ms), in the
runtime fsmc ships (chosen by fsmc.shipping.selection.choose_runtime for the first student, on this CPU), beside
each folder's test accuracy (evaluate/metrics.json). Folders are run folders or headline_cell cells (a cell has no
params.yaml: ``--params`` names one for the data).

    python benchmarks/depth_vs_width.py CELL_OR_RUN [CELL_OR_RUN ...] [--params params.yaml] [--seconds 4]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from fsmc.config import load_params
from fsmc.cpu_info import cpu_flags, cpu_model
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.export import to_onnx
from fsmc.models.checkpoint import load_checkpoint
from fsmc.shipping.latency import time_alternately, timed_batch
from fsmc.shipping.selection import choose_runtime, runner
from fsmc.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--params", type=Path, default=None, help="params.yaml for folders without one (headline_cell cells)")
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per batch size")
    args = parser.parse_args()
    spaces = [Workspace(folder) for folder in args.folders]
    params = load_params(spaces[0].run_params if spaces[0].run_params.is_file() else args.params)
    test = load_dataset(params.data).test
    images = to_tensor(test.images[:512], test.pixel_max).numpy()
    teacher, _, _ = load_checkpoint(spaces[0].teacher_model)
    students = {}
    for ws in spaces:
        summary = json.loads(ws.compress_summary.read_text())
        metrics = json.loads(ws.metrics.read_text())
        dropped = f", {len(summary['dropped_blocks'])} blocks dropped" if "dropped_blocks" in summary else ""
        label = f"{ws.root.parent.parent.name}/{ws.root.name}: {summary['scheme']}{dropped}"
        students[label] = (load_checkpoint(ws.student_model)[0], metrics)
    example = torch.from_numpy(images[:1])
    first = next(iter(students.values()))[0]
    choice, _, notices = choose_runtime(first, to_onnx(first, example), images[:256], params.ship)
    models = {"teacher": teacher, **{label: model for label, (model, _) in students.items()}}
    runs = {label: runner(choice, model, to_onnx(model, example)) for label, model in models.items()}
    timed = {}
    for size in (1, params.gate.latency_batch):
        batch = timed_batch(images, size)
        timed[size] = time_alternately({label: (lambda r=r: r(batch)) for label, r in runs.items()}, size, args.seconds)
    console = Console(width=max(Console().width, 150))
    console.print(f"CPU: {cpu_model()}; flags: {cpu_flags()}; runtime {choice.label} (chosen for the first student); {notices or ''}")
    table = Table(title="depth vs width: median / p90 ms and compression speed-up (teacher and students in the same runtime)")
    gate = params.gate.latency_batch
    for column in ("model", "MACs", "top-1 %", "worst class %", "b1 ms", "b1 speed-up", f"b{gate} ms", f"b{gate} speed-up"):
        table.add_column(column, justify="right")
    teacher_metrics = next(iter(students.values()))[1]["teacher"]
    for label in models:
        metrics = teacher_metrics if label == "teacher" else students[label][1]["student"]
        cells = [label, f"x{metrics['macs'] / teacher_metrics['macs']:.3f}", f"{100 * metrics['top1']:.2f}", f"{100 * metrics['worst_class_acc']:.2f}"]
        for size in timed:
            latency, base = timed[size][label], timed[size]["teacher"]
            cells += [f"{latency.median_ms:.3f} / {latency.p90_ms:.3f}", f"x{base.median_ms / latency.median_ms:.2f}"]
        table.add_row(*cells)
    console.print(table)


if __name__ == "__main__":
    main()
