"""Where removing width pays at batch 64, stage by stage, and the best a width-pruned ResNet-56 can reach (issue 32, goal 2).

A CIFAR ResNet's inner convolutions (the first of each block, whose output channels ``channel`` pruning removes) are
pruned with fsmc's own ``prune_channels`` (L1, structure only: latency depends on the shape), one stage at a time
at each of ``--ratios``, then whole-network layouts: uniform, SIMD-friendly stage widths (multiples of 16) and a run's
own allocated student (``--run-folder``). Each model runs in OpenVINO with all cores, in bf16 (the float precision fsmc
ships on AVX-512-BF16 / AMX CPUs) and as fsmc's int8 (``quantize_ptq`` + QDQ export), timed alternately in one process.
Printed per model: MACs, speed-up over the teacher in the same precision, the share of the MACs ratio it reaches
(issue 32's goal: >= 0.9), and the MACs per second the kernels reach (a student as fast as its MACs keeps the
teacher's rate).

    python benchmarks/stage_width.py --run-folder RUN [--ratios 0.5 0.75] [--seconds 6]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from fsmc.compress.pruning import model_cost, prune_channels
from fsmc.compress.quantization import quantize_ptq
from fsmc.config import load_params
from fsmc.cpu_info import cpu_flags, cpu_model
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.export import to_onnx
from fsmc.models.checkpoint import load_checkpoint
from fsmc.shipping.latency import time_alternately, timed_batch
from fsmc.shipping.selection import RuntimeChoice, runner

STAGES = ("layer1", "layer2", "layer3")
# Whole-network layouts (ratio per stage): uniform halves every stage (8/16/32 channels); the SIMD-friendly ones keep
# every inner width a multiple of 16, which leaves the 16-channel first stage whole.
LAYOUTS = {
    "uniform 0.5 (8/16/32)": (0.5, 0.5, 0.5),
    "SIMD widths (16/16/16)": (0.0, 0.5, 0.75),
    "SIMD widths (16/16/32)": (0.0, 0.5, 0.5),
}


def staged(teacher: torch.nn.Module, example: torch.Tensor, ratios: tuple[float, float, float]) -> torch.nn.Module:
    """``teacher`` with each stage's inner convolutions pruned at that stage's ratio."""
    inner = [n for n, m in teacher.named_modules() if isinstance(m, torch.nn.Conv2d) and n.endswith("conv1") and ".layer" in f".{n}"]
    by_stage = dict(zip(STAGES, ratios, strict=True))
    return prune_channels(teacher, example, 0.0, layer_ratios={n: by_stage[next(s for s in STAGES if f"{s}." in n)] for n in inner})[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-folder", type=Path, required=True, help="a run folder of a CIFAR ResNet (its teacher, and its student as allocated)")
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.5, 0.75])
    parser.add_argument("--seconds", type=float, default=6.0, help="timed seconds per precision")
    args = parser.parse_args()
    params = load_params(args.run_folder / "params.yaml")
    test = load_dataset(params.data).test
    images = to_tensor(test.images[:320], test.pixel_max)
    example = images[:1]
    teacher, _, _ = load_checkpoint(args.run_folder / "teacher" / "model.pt")
    models = {"teacher": teacher.eval()}
    for stage_index, stage in enumerate(STAGES):
        for ratio in args.ratios:
            ratios = tuple(ratio if i == stage_index else 0.0 for i in range(len(STAGES)))
            models[f"{stage} only at {ratio}"] = staged(teacher, example, ratios)
    models |= {label: staged(teacher, example, ratios) for label, ratios in LAYOUTS.items()}
    student, _, _ = load_checkpoint(args.run_folder / "compress" / "model.pt")
    models[f"the run's student ({params.compress.scheme}, {params.compress.allocation})"] = student.eval()
    macs = {label: model_cost(model, example).macs for label, model in models.items()}
    console = Console(width=160)
    console.print(f"CPU: {cpu_model()} | flags: {cpu_flags()} | torch threads {torch.get_num_threads()}")
    batch = timed_batch(images.numpy(), 64)
    choice = RuntimeChoice("openvino", "bf16", torch.get_num_threads())
    for precision in ("bf16", "int8"):
        runs = {}
        for label, model in models.items():
            shipped = quantize_ptq(model, images[64:320]) if precision == "int8" else model
            runs[label] = runner(choice, shipped, to_onnx(shipped, example))
        timed = time_alternately({label: (lambda run=run: run(batch)) for label, run in runs.items()}, 64, args.seconds)
        base = timed["teacher"].median_ms
        table = Table(title=f"batch 64, OpenVINO {precision if precision == 'bf16' else 'int8 (QDQ, float remainder in bf16)'}, {choice.threads} threads")
        for column in ("model", "MACs", "median / p90 ms", "speed-up", "of MACs ratio", "GMAC/s"):
            table.add_column(column, justify="right")
        for label in models:
            latency = timed[label]
            speedup = base / latency.median_ms
            table.add_row(
                label, f"x{macs[label] / macs['teacher']:.3f}", f"{latency.median_ms:.2f} / {latency.p90_ms:.2f}", f"x{speedup:.2f}",
                f"{speedup * macs[label] / macs['teacher']:.2f}", f"{macs[label] * 64 / latency.median_ms / 1e6:.0f}",
            )  # fmt: skip
        console.print(table)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
