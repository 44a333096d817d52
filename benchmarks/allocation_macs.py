"""A MACs target met by the damage allocation, and what it buys in speed (issue 33, goal 4).

The product's own scheme code (``fsmc.compress.schemes.compress`` with ``compress.allocation=damage`` and
``compress.macs_fraction``, what ``fsmc tune --set target.macs=F`` tries) on a torchvision ResNet-18 at 224×224
and a MobileNetV3-small at 64×64 (random initialisation: no ImageNet weights offline; damage needs images, not
labels, and MACs and latency depend on the shape only), with CIFAR-10 test images resized as the few-shot and
OOD images. Prints MACs asked against counted, the time the allocation took, and the compression speed-up of the
allocated student and of uniform pruning at the same MACs, teacher and student in the runtime fsmc ships
(``fsmc.shipping.choose_and_measure``: chosen on this CPU, timed alternately in one process), at batch 1 and 64.

    python benchmarks/allocation_macs.py [--macs 0.5] [--images 64] [--seconds 2] [--round-to 16] [--mobilenet-size 224]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from fsmc.compress.pruning import model_cost, prune_channels
from fsmc.compress.schemes import SchemeInputs, compress
from fsmc.config import load_params
from fsmc.cpu_info import cpu_flags, cpu_model
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.models.normalized import NormalizedClassifier
from fsmc.models.torchvision_net import TorchvisionClassifier
from fsmc.shipping.ship import choose_and_measure


def _uniform_at(teacher, example, keep: float) -> tuple[torch.nn.Module, float]:
    """Uniform pruning whose MACs come nearest ``keep`` (bisection on the ratio)."""
    total = model_cost(teacher, example).macs
    low, high = 0.0, 0.9
    for _ in range(12):
        ratio = (low + high) / 2
        student = prune_channels(teacher, example, ratio)[0]
        if model_cost(student, example).macs / total > keep:
            low = ratio
        else:
            high = ratio
    student = prune_channels(teacher, example, high)[0]
    return student, high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--macs", type=float, default=0.5)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--round-to", type=int, default=0, help="compress.round_to: kept channels a multiple of this (0: exact)")
    parser.add_argument("--mobilenet-size", type=int, default=64, help="MobileNetV3-small's input size (224: issue 32's goal 2)")
    parser.add_argument("--only", choices=("resnet18", "mobilenet_v3_small"), default=None)
    args = parser.parse_args()
    console = Console(width=200)  # every figure whole, in a log as in a terminal
    console.print(f"CPU: {cpu_model()} | flags: {cpu_flags()} | torch threads {torch.get_num_threads()}")
    params = load_params(None, ["data.dataset=cifar10", "data.teacher=resnet56-jpeg", "compress.allocation=damage", f"compress.macs_fraction={args.macs}",
                                f"ship.timing_seconds={args.seconds}", "gate.latency_batch=64", f"compress.round_to={args.round_to}"])
    test = load_dataset(params.data).test
    cifar = to_tensor(test.images[: args.images + 256], test.pixel_max)
    table = Table(title=f"damage allocation at MACs x{args.macs:g} (compression speed-up: teacher and student in the shipped runtime)")
    columns = ("model", "MACs asked", "MACs counted", "error", "allocation s", "runtime", "b1", "b64", "b64 x MACs")  # x MACs: goal >= 0.9
    for column in (*columns, "uniform ratio", "uniform b1", "uniform b64"):
        table.add_column(column, justify="right")
    for arch, size in (("resnet18", 224), ("mobilenet_v3_small", args.mobilenet_size)):
        if args.only not in (None, arch):
            continue
        torch.manual_seed(0)
        teacher = NormalizedClassifier(TorchvisionClassifier(arch, 10), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]).eval()
        images = F.interpolate(cifar, size=(size, size), mode="bilinear", align_corners=False)
        inputs = SchemeInputs(teacher_name=f"torchvision:{arch}", spec={}, example=images[:1], images=images[: args.images // 2],
                              labels=torch.zeros(args.images // 2, dtype=torch.long), ood_images=images[args.images // 2 : args.images],
                              num_classes=10)
        started = time.perf_counter()
        result = compress(teacher, dataclasses.replace(params.compress, calibration_images=args.images), inputs)
        seconds = time.perf_counter() - started
        counted = model_cost(result.model, images[:1]).macs / model_cost(teacher, images[:1]).macs
        timing = images[args.images : args.images + 64].numpy()
        allocated = choose_and_measure(teacher, result.model, timing, params)["latency"]["batches"]
        uniform, ratio = _uniform_at(teacher, images[:1], counted)
        even = choose_and_measure(teacher, uniform, timing, params)
        runtime, even = even["latency"]["label"], even["latency"]["batches"]
        table.add_row(f"{arch} @{size}", f"x{args.macs:g}", f"x{counted:.4f}", f"{100 * (counted - args.macs) / args.macs:+.2f} %",
                      f"{seconds:.0f}", runtime, f"x{allocated['1']['compression_speedup']:.2f}", f"x{allocated['64']['compression_speedup']:.2f}",
                      f"{allocated['64']['compression_speedup'] * counted:.2f}",
                      f"{ratio:.3f}", f"x{even['1']['compression_speedup']:.2f}", f"x{even['64']['compression_speedup']:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
