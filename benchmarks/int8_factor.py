"""What int8 buys over the same network in fp32, each at its fastest on this CPU, at batch 1 and 64 (issue 32, goal 1).

For each network, every fp32 configuration fsmc can ship (torch eager; ONNX Runtime and OpenVINO fp32, 1 thread and
all cores) and every int8 one (fsmc's own PTQ, ``fsmc.compress.quantization.quantize_ptq``, x86 FX: in torch, and its
QDQ export, ``fsmc.export.to_onnx``, in ONNX Runtime and OpenVINO) are timed alternately in one process
(``fsmc.shipping.latency.time_alternately``, median of repeats) with the product's runners
(``fsmc.shipping.selection.runner``). The int8 factor is the fastest fp32 row over the fastest int8 row, per batch:
int8 against the fp32 runtime a user would otherwise ship, not against torch eager. OpenVINO bf16 (AMX) is printed
beside it, as the float configuration fsmc really ships on such CPUs.

Networks: the ResNet-56 teacher of a run folder at 32×32 (``--run-folder``), and a torchvision ResNet-18 at 224×224
(random initialisation: no ImageNet weights offline; latency depends on the shape only), both calibrated on CIFAR-10
test images (resized for ResNet-18). ``--only ceiling`` times a stack of wide convolutions instead (256 channels, 3×3,
16×16 maps: every kernel full, nothing but MACs) with the MACs per second each precision reaches: the int8 factor this
CPU's kernels give at all, against which a network's own factor is read.

    python benchmarks/int8_factor.py --run-folder runs/<time>-<id> [--batches 1 64] [--seconds 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torch import nn

from fsmc.compress.pruning import model_cost
from fsmc.compress.quantization import quantize_ptq
from fsmc.config import load_params
from fsmc.cpu_info import cpu_flags, cpu_model
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.export import to_onnx
from fsmc.models.checkpoint import load_checkpoint
from fsmc.models.normalized import NormalizedClassifier
from fsmc.models.torchvision_net import TorchvisionClassifier
from fsmc.shipping.latency import time_alternately, timed_batch
from fsmc.shipping.selection import RuntimeChoice, runner

CALIBRATION = 256  # images, as compress.calibration_images would give from shots + OOD


def rows(threads: int, bf16: bool) -> list[tuple[str, RuntimeChoice, str]]:
    """(label, runtime choice, kind) with kind ``fp32``, ``int8`` or ``bf16`` (printed, not in the factor)."""
    found = [("torch eager fp32", RuntimeChoice("torch", "fp32", threads), "fp32"), ("torch int8 (FX x86)", RuntimeChoice("torch", "fp32", threads), "int8")]
    for n in sorted({1, threads}):
        for runtime in ("onnxruntime", "openvino"):
            choice = RuntimeChoice(runtime, "fp32", n)
            found += [(f"{runtime} fp32 x{n}", choice, "fp32"), (f"{runtime} int8 QDQ x{n}", choice, "int8")]
        if bf16:
            found += [(f"openvino bf16 x{n}", RuntimeChoice("openvino", "bf16", n), "bf16")]
    return found


def wide_conv_stack(width: int = 256, depth: int = 4) -> nn.Sequential:
    """A stride-2 stem to 16×16, then ``depth`` 3×3 convolutions of ``width`` channels: kernels full, MACs dominate."""
    layers: list[nn.Module] = [nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU()]
    for _ in range(depth):
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10)).eval()


def measure(
    name: str, model: torch.nn.Module, images: torch.Tensor, batches: list[int], seconds: float, console: Console,
    labelled: tuple[torch.Tensor, np.ndarray] | None = None, macs: int | None = None,
) -> None:
    """Time ``model`` in every configuration of :func:`rows` and print a table per batch.

    With ``labelled`` (test images, labels) each configuration's top-1 is printed too: int8 in an ONNX runtime
    must keep the accuracy of fsmc's int8 model in torch.
    """
    import openvino

    bf16 = "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    model = model.eval()
    int8 = quantize_ptq(model, images[:CALIBRATION])
    example = images[:1]
    onnx = {"fp32": to_onnx(model, example), "int8": to_onnx(int8, example)}
    reference = images[CALIBRATION : CALIBRATION + 128]
    with torch.inference_mode():
        expected = model(reference).argmax(1).numpy()
    runs, agreement = {}, {}
    for label, choice, kind in rows(torch.get_num_threads(), bf16):
        quantized = kind == "int8"
        try:
            runs[label] = (runner(choice, int8 if quantized else model, onnx["int8" if quantized else "fp32"]), kind)
        except Exception as error:  # a runtime that cannot run it is a row that says so
            console.print(f"{name}: {label} left out ({type(error).__name__}: {str(error)[:120]})")
            continue
        agreement[label] = float((runs[label][0](reference.numpy()).argmax(1) == expected).mean())
    if labelled is not None:
        test_images, labels = labelled
        for label, (run, kind) in runs.items():
            logits = np.concatenate([run(test_images[start : start + 250].numpy()) for start in range(0, len(test_images), 250)])
            console.print(f"{name}: {label}: top-1 {100 * float((logits.argmax(1) == labels).mean()):.2f} % on {len(labels)} test images")
    for size in batches:
        batch = timed_batch(images.numpy(), size)
        timed = time_alternately({label: (lambda run=run: run(batch)) for label, (run, _) in runs.items()}, size, seconds)
        fastest = {kind: min((label for label, (_, k) in runs.items() if k == kind), key=lambda label: timed[label].median_ms) for kind in ("fp32", "int8")}
        table = Table(title=f"{name}, batch {size}: median / p90 ms")
        for column in ("configuration", "kind", "median / p90 ms", "vs fastest fp32", "agrees with torch fp32", *(("GMAC/s",) if macs else ())):
            table.add_column(column, justify="right")
        base = timed[fastest["fp32"]].median_ms
        for label, (_, kind) in runs.items():
            mark = " (fastest)" if label in fastest.values() else ""
            rate = (f"{macs * size / timed[label].median_ms / 1e6:.0f}",) if macs else ()
            table.add_row(label + mark, kind, f"{timed[label].median_ms:.3f} / {timed[label].p90_ms:.3f}", f"x{base / timed[label].median_ms:.2f}",
                          f"{100 * agreement[label]:.1f} %", *rate)  # fmt: skip
        console.print(table)
        console.print(f"{name}, batch {size}: int8 factor x{base / timed[fastest['int8']].median_ms:.2f} "
                      f"({fastest['int8']} against {fastest['fp32']})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-folder", type=Path, required=True, help="a run folder whose teacher is the ResNet-56")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per batch and network")
    parser.add_argument("--test-images", type=int, default=5000, help="labelled test images for ResNet-56's top-1 per configuration")
    parser.add_argument("--only", choices=("resnet56", "resnet18", "ceiling"), default=None)
    args = parser.parse_args()
    console = Console(width=160)
    console.print(f"CPU: {cpu_model()} | flags: {cpu_flags()} | torch threads {torch.get_num_threads()}")
    params = load_params(args.run_folder / "params.yaml")
    test = load_dataset(params.data).test
    cifar = to_tensor(test.images[: CALIBRATION + 128], test.pixel_max)
    if args.only in (None, "resnet56"):
        teacher, _, _ = load_checkpoint(args.run_folder / "teacher" / "model.pt")
        # Accuracy on test images the calibration did not see.
        held_out = (to_tensor(test.images[-args.test_images :], test.pixel_max), test.labels[-args.test_images :])
        measure("ResNet-56 @32", teacher, cifar, args.batches, args.seconds, console, held_out, model_cost(teacher, cifar[:1]).macs)
    if args.only in (None, "resnet18"):
        torch.manual_seed(0)
        resnet18 = NormalizedClassifier(TorchvisionClassifier("resnet18", 10), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        images = F.interpolate(cifar, size=(224, 224), mode="bilinear", align_corners=False)
        measure("ResNet-18 @224", resnet18, images, args.batches, args.seconds, console, macs=model_cost(resnet18, images[:1]).macs)
    if args.only == "ceiling":
        torch.manual_seed(0)
        stack = wide_conv_stack()
        measure("wide conv stack", stack, cifar, args.batches, args.seconds, console, macs=model_cost(stack, cifar[:1]).macs)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
