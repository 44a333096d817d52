"""The method zoo on the ResNet-56 CIFAR-10 setting, side by side in one run (issue 4).

Setting: teacher resnet56-jpeg, K_max 50, rho 10 (exp), OOD budget 3x, 50 % L1 inner-channel
pruning, ``--steps`` recovery steps, evaluated on a stratified 2,000-image test subset.

Prints, per method (with and without the OE plug-in): wall time, top-1, minority and
worst-class accuracy, and whether the teacher passes came from the cache. Then:

* training-loop throughput: fsmc's ``train`` (kd objective, batch 32 ID + 64 OOD) against a
  bare torch loop doing the same steps on the same student and tensors (target ratio >= 0.9);
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
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from fsmc.compress.pruning import model_cost
from fsmc.compress.quantization import quantize_ptq
from fsmc.config import load_params
from fsmc.gate import cpu_latency
from fsmc.models.checkpoint import load_checkpoint
from fsmc.recover.loop import train
from fsmc.recover.losses import distillation_loss
from fsmc.recover.methods.base import kd_objective
from fsmc.recover.pipeline import with_method_defaults
from fsmc.stages import STAGES
from fsmc.stages.reading import recovery_inputs
from fsmc.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
SETTING = ["dataset=cifar10", "teacher=resnet56-jpeg", "k_max=50", "imbalance_ratio=10", "budget=3x", "max_test_images=2000"]


def _bare_kd_loop(student, images, labels, logits, ood, ood_logits, steps, params) -> None:
    """The same steps as fsmc's kd+oe loop written plainly: SGD, cosine, joint KD + CE + Gamma-labelled weighted CE."""
    prior = torch.bincount(labels, minlength=10).double() / len(labels)
    rates = prior.max() + prior.min() - prior
    distribution, weights = (rates / rates.sum()).float(), (10 * rates / rates.sum()).float()
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.SGD(student.parameters(), lr=params.lr, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    for step in range(steps):
        student.train()
        i = torch.arange(step * 32, step * 32 + 32) % len(images)
        j = torch.arange(step * 64, step * 64 + 64) % len(ood)
        x = torch.cat([images[i], ood[j]])
        out = student(x)
        loss = params.alpha * distillation_loss(out, torch.cat([logits[i], ood_logits[j]]), params.temperature)
        ood_labels = torch.multinomial(distribution, 64, replacement=True, generator=generator)
        label_term = F.cross_entropy(out[:32], labels[i]) + params.lambda_ood * F.cross_entropy(out[32:], ood_labels, weight=weights)
        loss = loss + (1 - params.alpha) * label_term
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--methods", default="none,bp,kd,fskd,cd,mir")
    parser.add_argument("--throughput-steps", type=int, default=40)
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

    # Training-loop throughput against a bare loop, same student and tensors.
    inputs = recovery_inputs(params, shared, with_features=False)
    teacher, data = inputs.teacher, inputs.data
    student, _, _ = load_checkpoint(shared.pruned_model)
    images, ood_images, logits, ood_logits = data.images, data.ood_images, data.teacher_logits, data.teacher_ood_logits
    steps = args.throughput_steps
    loop_params = with_method_defaults(dataclasses.replace(params.recover, method="kd", steps=steps, early_stopping="off", oe=True))
    timings = {}
    for _ in range(2):  # alternate, keep the best of two each
        start = time.perf_counter()
        train(student, data, loop_params, kd_objective(loop_params))
        timings["fsmc"] = min(timings.get("fsmc", 1e9), time.perf_counter() - start)
        bare_student = __import__("copy").deepcopy(student)
        start = time.perf_counter()
        _bare_kd_loop(bare_student, images, data.labels, logits, ood_images, ood_logits, steps, loop_params)
        timings["bare"] = min(timings.get("bare", 1e9), time.perf_counter() - start)
    per_step = 32 + 64
    console.print(
        f"training loop, {steps} steps of 32 ID + 64 OOD: fsmc {steps * per_step / timings['fsmc']:.1f} img/s, "
        f"bare {steps * per_step / timings['bare']:.1f} img/s, ratio fsmc/bare = {timings['bare'] / timings['fsmc']:.3f} (target >= 0.9)"
    )

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
