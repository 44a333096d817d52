"""Does the pruned width pay, and does rounding it for SIMD help? (issue 32, goal 2; ``compress.round_to``)

A run folder's teacher pruned by fsmc's own ``prune_channels`` (L1, no recovery: latency depends on the shape
only) at several ratios, each without and with ``round_to``, plus ``block-drop``'s structure at the same MACs,
timed alternately in one process (median / p90 ms) at batch 1 and 64 in the runtime fsmc ships
(``fsmc.shipping.selection.choose_runtime`` on the teacher, on this CPU) and in OpenVINO fp32 with all cores, with the
MACs per second each model reaches at batch 64 (a model as fast as its MACs say keeps the teacher's rate).

    python benchmarks/width_rounding.py RUN_FOLDER [--ratios 0.5 0.6 0.7] [--round-to 8] [--seconds 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from fsmc.compress.blocks import drop_blocks
from fsmc.compress.pruning import model_cost, prune_channels
from fsmc.config import load_params
from fsmc.cpu_info import cpu_flags, cpu_model
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.export import to_onnx
from fsmc.models.checkpoint import load_checkpoint
from fsmc.shipping.latency import time_alternately, timed_batch
from fsmc.shipping.selection import RuntimeChoice, choose_runtime, runner
from fsmc.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_folder", type=Path)
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.5, 0.6, 0.7])
    parser.add_argument("--round-to", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    ws = Workspace(args.run_folder)
    params = load_params(ws.run_params)
    test = load_dataset(params.data).test
    images = to_tensor(test.images[:512], test.pixel_max)
    teacher, _, _ = load_checkpoint(ws.teacher_model)
    example = images[:1]
    models = {"teacher": teacher}
    for ratio in args.ratios:
        for round_to in (0, args.round_to):
            models[f"channel {ratio} round_to {round_to}"] = prune_channels(teacher, example, ratio, round_to=round_to)[0]
    models["block-drop 0.5"] = drop_blocks(teacher, 0.5, images[:256], example)[0]
    macs = {label: model_cost(model, example).macs for label, model in models.items()}
    onnx = {label: to_onnx(model, example) for label, model in models.items()}
    shipped, _, _ = choose_runtime(teacher, onnx["teacher"], images[:256].numpy(), params.ship)
    console = Console(width=max(Console().width, 150))
    console.print(f"CPU: {cpu_model()}; flags: {cpu_flags()}; torch threads {torch.get_num_threads()}")
    for choice in (shipped, RuntimeChoice("openvino", "fp32", torch.get_num_threads())):
        runs = {label: runner(choice, model, onnx[label]) for label, model in models.items()}
        table = Table(title=f"{choice.label}: median / p90 ms, speed-up over the teacher in the same runtime")
        for column in ("model", "MACs", "1 / MACs", "b1 ms", "b1 speed-up", "b64 ms", "b64 speed-up", "b64 GMAC/s"):
            table.add_column(column, justify="right")
        timed = {}
        for size in (1, 64):
            batch = timed_batch(images.numpy(), size)
            timed[size] = time_alternately({label: (lambda r=r: r(batch)) for label, r in runs.items()}, size, args.seconds)
        for label in models:
            cells = [label, f"x{macs[label] / macs['teacher']:.3f}", f"x{macs['teacher'] / macs[label]:.2f}"]
            for size in (1, 64):
                latency = timed[size][label]
                cells += [f"{latency.median_ms:.3f} / {latency.p90_ms:.3f}", f"x{timed[size]['teacher'].median_ms / latency.median_ms:.2f}"]
            # The rate the runtime's kernels reach on this model: narrow layers fill SIMD registers less than the teacher's.
            cells.append(f"{macs[label] * 64 / timed[64][label].median_ms / 1e6:.0f}")
            table.add_row(*cells)
        console.print(table)


if __name__ == "__main__":
    main()
