"""A user's torchvision ResNet-18 at 224x224, channel-pruned to about -50 % MACs: CPU latency vs MACs.

Issue "compress the user's own model": the latency speed-up at batch 32 must reach at least 0.8x
the MACs ratio, teacher and student measured alternately in one run (fsmc's gate measurement),
in fp32 NCHW and channels-last. Weights are random: latency does not depend on their values.

    python benchmarks/user_model_latency.py [--arch resnet18] [--size 224] [--batch 32] [--target 0.5]
"""

from __future__ import annotations

import argparse

import torch
from rich.console import Console
from rich.table import Table

from fsmc.compress.pruning import model_cost, prune_channels
from fsmc.gate import measure_speedup
from fsmc.models.zoo import build


def _pruned_to(teacher, example, target: float):
    """The smallest per-layer ratio (steps of 0.05) whose student has at most ``target`` of the MACs."""
    teacher_macs = model_cost(teacher, example).macs
    for step in range(1, 19):
        ratio = round(0.05 * step, 2)
        student, _ = prune_channels(teacher, example, ratio=ratio)
        if model_cost(student, example).macs <= target * teacher_macs:
            return student, ratio
    raise SystemExit(f"no ratio up to 0.9 reaches {target:.0%} of the MACs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--target", type=float, default=0.5, help="student MACs / teacher MACs to prune to")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    spec = {"arch": "torchvision", "kwargs": {"name": args.arch, "num_classes": args.classes},
            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    teacher = build(spec).eval()
    example = torch.rand(1, 3, args.size, args.size)
    student, ratio = _pruned_to(teacher, example, args.target)
    macs_t, macs_s = model_cost(teacher, example).macs, model_cost(student, example).macs
    batch = torch.rand(args.batch, 3, args.size, args.size)
    table = Table(title=f"{args.arch} {args.size}x{args.size}, batch {args.batch}, {torch.get_num_threads()} threads, per-layer ratio {ratio}")
    for column in ("layout", "teacher ms", "student ms", "speed-up", "MACs ratio", "speed-up / MACs ratio"):
        table.add_column(column, justify="right")
    for layout in ("NCHW", "channels-last"):
        fmt = torch.channels_last if layout == "channels-last" else torch.contiguous_format
        t, s, x = teacher.to(memory_format=fmt), student.to(memory_format=fmt), batch.contiguous(memory_format=fmt)
        result = measure_speedup(t, s, x, rounds=args.rounds)
        macs_ratio = macs_t / macs_s
        table.add_row(layout, f"{result['teacher_ms']:.1f}", f"{result['student_ms']:.1f}", f"x{result['speedup']:.2f}",
                      f"x{macs_ratio:.2f}", f"{result['speedup'] / macs_ratio:.2f} (target >= 0.80)")
    Console().print(table)
    print(f"MACs {macs_t / 1e9:.3f} G -> {macs_s / 1e9:.3f} G; params {model_cost(teacher, example).params:,} -> {model_cost(student, example).params:,}")


if __name__ == "__main__":
    main()
