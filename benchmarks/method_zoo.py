"""The method zoo on the ResNet-56 CIFAR-10 setting, side by side in one run (issue 4).

Setting: teacher resnet56-jpeg, K_max 50, rho 10 (exp), OOD budget 3x, 50 % L1 inner-channel
pruning, ``--steps`` recovery steps, evaluated on a stratified 2,000-image test subset.

Prints, per method (with and without the OE plug-in): wall time, top-1, minority and
worst-class accuracy, and whether the teacher passes came from the cache. Then (the recovery
loop's speed against a bare torch loop is ``benchmarks/headline_cell.py --loop-steps``):

* CPU latency of the pruned student vs the teacher, divided by their MACs ratio;
* int8 (FX PTQ, x86) vs fp32 latency of the teacher at batch 1 and 64.

Usage: ``python benchmarks/method_zoo.py [--steps 200] [--methods none,bp,kd,fskd,cd,mir]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from fsmc.compress.pruning import model_cost
from fsmc.compress.quantization import quantize_ptq
from fsmc.config import load_params
from fsmc.gate import cpu_latency
from fsmc.models.checkpoint import load_checkpoint
from fsmc.stages import STAGES
from fsmc.stages.reading import recovery_inputs
from fsmc.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
SETTING = ["dataset=cifar10", "teacher=resnet56-jpeg", "k_max=50", "imbalance_ratio=10", "budget=3x", "max_test_images=2000"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--methods", default="none,bp,kd,fskd,cd,mir")
    args = parser.parse_args()
    console = Console()
    params = load_params(REPO / "params.yaml", [*SETTING, f"recover.steps={args.steps}"])
    root = Path(tempfile.mkdtemp(prefix="fsmc-zoo-"))
    shared = Workspace(root / "shared")
    started = time.perf_counter()
    for stage in ("record_inputs", "sample_few_shot", "teacher", "curate_ood", "validate", "compress"):
        STAGES[stage](params, shared)
    console.print(f"shared stages (sample, teacher, OOD, validate, prune): {time.perf_counter() - started:.1f} s")

    results = Table(title=f"ResNet-56 CIFAR-10, K_max 50, rho 10, 50 % inner channels, {args.steps} steps, 2,000 test images")
    for column in ("method", "wall s", "top-1 %", "minority %", "worst %", "teacher passes cached"):
        results.add_column(column, justify="right")
    teacher_row = None
    for method in args.methods.split(","):
        for oe in (False, True) if method != "none" else (False,):
            run_params = dataclasses.replace(params, recover=dataclasses.replace(params.recover, method=method, oe=oe))
            ws = Workspace(root / f"{method}-{oe}")
            shutil.copytree(shared.root, ws.root)
            start = time.perf_counter()
            report = STAGES["recover"](run_params, ws)
            wall = time.perf_counter() - start
            metrics = STAGES["evaluate"](run_params, ws)
            student, teacher_metrics = metrics["student"], metrics["teacher"]
            teacher_row = teacher_metrics
            cached = report["teacher_outputs_cached"]
            results.add_row(
                run_params.recover.label, f"{wall:.1f}", f"{100 * student['top1']:.2f}", f"{100 * student['minority_acc']:.2f}",
                f"{100 * student['worst_class_acc']:.2f}", f"{cached['few_shot']}/{cached['ood']}",
            )
            console.print(f"  {run_params.recover.label}: {wall:.1f} s, top-1 {100 * student['top1']:.2f}")
    if teacher_row:
        results.add_row(
            "teacher", "-", f"{100 * teacher_row['top1']:.2f}", f"{100 * teacher_row['minority_acc']:.2f}", f"{100 * teacher_row['worst_class_acc']:.2f}", "-"
        )
    console.print(results)

    inputs = recovery_inputs(params, shared, with_features=False)
    teacher, data = inputs.teacher, inputs.data
    student, _, _ = load_checkpoint(shared.pruned_model)
    images, ood_images = data.images, data.ood_images

    # Latency: pruned vs teacher (against the MACs ratio), int8 vs fp32.
    latency = Table(title="CPU latency (best of 10), ms per batch")
    for column in ("model", "batch 1", "batch 64", "speed-up b1", "speed-up b64", "MACs ratio", "speed-up / (1 / MACs ratio) b64"):
        latency.add_column(column, justify="right")
    int8 = quantize_ptq(teacher, torch.cat([images, ood_images[:256]]))
    example = images[:1]
    macs_ratio = model_cost(student, example).macs / model_cost(teacher, example).macs
    base = {b: cpu_latency(teacher, images[:b].contiguous()) for b in (1, 64)}
    for name, model, ratio in (("teacher fp32", teacher, 1.0), ("pruned fp32", student, macs_ratio), ("teacher int8", int8, 1.0)):
        t = {b: cpu_latency(model, images[:b].contiguous()) for b in (1, 64)}
        speed = {b: base[b] / t[b] for b in (1, 64)}
        latency.add_row(
            name, f"{1000 * t[1]:.2f}", f"{1000 * t[64]:.1f}", f"x{speed[1]:.2f}", f"x{speed[64]:.2f}", f"{ratio:.3f}",
            f"{speed[64] * ratio:.2f}",
        )
    console.print(latency)
    console.print(f"threads={torch.get_num_threads()}; workspaces under {root}")


if __name__ == "__main__":
    main()
