"""Teacher and student of one run folder in every runtime fsmc can ship, fp32, bf16 and int8, at batch 1 and 64 (issue 32).

Each row times the teacher and the student alternately (fsmc.shipping.latency.time_alternately, median and
p90 in ms) in one runtime configuration, built with the product's own runners (fsmc.shipping.selection.runner);
int8 rows run fsmc's own post-training quantization (fsmc.compress.quantization.quantize_ptq, x86 FX) in torch,
and its ONNX export (QDQ) in OpenVINO and ONNX Runtime. Columns: the compression speed-up (teacher / student,
same row), and the deployment speed-up (the teacher in torch eager fp32 / the student in that row).

    python benchmarks/runtime_latency.py runs/<time>-<id> [--batches 1 64] [--seconds 2]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from fsmc.compress.quantization import quantize_ptq
from fsmc.config import load_params
from fsmc.cpu_info import cpu_flags, cpu_model
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.export import to_onnx
from fsmc.models.checkpoint import load_checkpoint
from fsmc.models.int8_graph import is_quantized
from fsmc.shipping.latency import time_alternately, timed_batch
from fsmc.shipping.selection import RuntimeChoice, runner, torch_runner


def configurations(bf16: bool, threads: int) -> list[tuple[str, RuntimeChoice, bool]]:
    """(row label, runtime choice, int8?) for every row."""
    rows = [("torch eager fp32", RuntimeChoice("torch", "fp32", threads), False)]
    for n in sorted({1, threads}):
        rows += [(f"onnxruntime fp32 x{n}", RuntimeChoice("onnxruntime", "fp32", n), False)]
        rows += [(f"openvino fp32 x{n}", RuntimeChoice("openvino", "fp32", n), False)]
        if bf16:
            rows += [(f"openvino bf16 x{n}", RuntimeChoice("openvino", "bf16", n), False)]
    rows += [("torch int8 (FX x86)", RuntimeChoice("torch", "fp32", threads), True)]
    for n in sorted({1, threads}):
        rows += [(f"onnxruntime int8 QDQ x{n}", RuntimeChoice("onnxruntime", "fp32", n), True)]
        rows += [(f"openvino int8 QDQ x{n}", RuntimeChoice("openvino", "fp32", n), True)]
        if bf16:  # the layers left in float run in bf16
            rows += [(f"openvino int8 QDQ + bf16 x{n}", RuntimeChoice("openvino", "bf16", n), True)]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_folder", type=Path)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per row and batch")
    args = parser.parse_args()
    from fsmc.workspace import Workspace

    ws = Workspace(args.run_folder)
    params = load_params(ws.run_params)
    test = load_dataset(params.data).test
    images = to_tensor(test.images[:512], test.pixel_max)
    models = {role: load_checkpoint(path)[0].eval() for role, path in (("teacher", ws.teacher_model), ("student", ws.student_model))}
    if is_quantized(models["student"]):
        raise SystemExit("give the run folder of a float student: this benchmark quantizes both models itself")
    calibration = images[: params.compress.calibration_images]
    int8 = {role: quantize_ptq(model, calibration) for role, model in models.items()}
    example = images[:1]
    onnx = {(role, False): to_onnx(m, example) for role, m in models.items()} | {(role, True): to_onnx(m, example) for role, m in int8.items()}
    import openvino

    bf16 = "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    threads = torch.get_num_threads()
    metrics = json.loads(ws.metrics.read_text())
    macs = metrics["teacher"]["macs"] / metrics["student"]["macs"]
    reference = images[:256].numpy()
    results: dict[int, list[tuple[str, dict]]] = {b: [] for b in args.batches}
    eager = torch_runner(models["teacher"])
    for label, choice, quantized in configurations(bf16, threads):
        runs = {
            role: runner(choice, (int8 if quantized else models)[role], onnx[(role, quantized)]) for role in ("teacher", "student")
        }
        agreement = float((runs["student"](reference).argmax(1) == torch_runner(models["student"])(reference).argmax(1)).mean())
        for size in args.batches:
            batch = timed_batch(images.numpy(), size)
            timed = time_alternately(
                {"eager": lambda: eager(batch), "teacher": lambda: runs["teacher"](batch), "student": lambda: runs["student"](batch)},
                size, args.seconds,
            )  # fmt: skip
            results[size].append((label, {"timed": timed, "agreement": agreement}))
    console = Console(width=max(Console().width, 130))  # the table unwrapped, also when piped
    console.print(f"CPU: {cpu_model()}; flags: {cpu_flags()}; torch threads {threads}; x1/x{threads}: runtime threads; "
                  f"1 / MACs ratio x{macs:.2f}; run {args.run_folder.name}")  # fmt: skip
    for size, rows in results.items():
        table = Table(title=f"batch {size}: median / p90 ms (teacher in torch eager fp32 timed beside every row)")
        for column in ("runtime", "teacher", "student", "compression", "deployment", "student agrees with fp32"):
            table.add_column(column, justify="right")
        for label, row in rows:
            t, s, e = row["timed"]["teacher"], row["timed"]["student"], row["timed"]["eager"]
            table.add_row(
                label, f"{t.median_ms:.3f} / {t.p90_ms:.3f}", f"{s.median_ms:.3f} / {s.p90_ms:.3f}",
                f"x{t.median_ms / s.median_ms:.2f}", f"x{e.median_ms / s.median_ms:.2f}", f"{100 * row['agreement']:.1f} %",
            )  # fmt: skip
        console.print(table)
    print(json.dumps({str(b): {label: {k: v.to_dict() for k, v in row["timed"].items()} for label, row in rows} for b, rows in results.items()}))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
