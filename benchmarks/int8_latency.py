"""Teacher vs student in fp32 and int8, at batch 1 and 64, from one finished run folder (issue 32, goal 3).

Given a run folder of ``compress.scheme=channel+int8-ptq`` (or any run folder), times, in one process and
alternating, the fp32 teacher, the teacher in int8 (fsmc's own ``quantize_ptq``, calibrated on the same
number of test images), and the run's student, each with ``fsmc.gate.measure_speedup`` (best of repeats),
and prints the speed-ups beside the MACs ratio, with the CPU flags and thread count.

    python benchmarks/int8_latency.py runs/<time>-<id> [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from fsmc.compress.quantization import quantize_ptq
from fsmc.config import load_params
from fsmc.cpu_info import cpu_flags
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.gate import measure_speedup
from fsmc.models.checkpoint import load_checkpoint
from fsmc.models.int8_graph import is_quantized
from fsmc.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_folder", type=Path)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    ws = Workspace(args.run_folder)
    params = load_params(ws.run_params)
    teacher, _, _ = load_checkpoint(ws.teacher_model)
    student, _, _ = load_checkpoint(ws.student_model)
    test = load_dataset(params.data).test
    images = to_tensor(test.images[:512], test.pixel_max)
    teacher_int8 = quantize_ptq(teacher, images[: params.compress.calibration_images])
    metrics = json.loads(ws.metrics.read_text())
    macs_ratio = metrics["student"]["macs"] / metrics["teacher"]["macs"]

    table = Table(title=f"{args.run_folder.name}: CPU latency, best of {args.repeats} (CPU: {cpu_flags()}, {torch.get_num_threads()} threads)")
    for column in ("batch", "teacher fp32 ms", "teacher int8 ms", f"student ({'int8' if is_quantized(student) else 'fp32'}) ms",
                   "student vs teacher fp32", "student vs teacher int8", "1 / MACs ratio"):  # fmt: skip
        table.add_column(column, justify="right")
    for batch in (1, 64):
        x = images[:batch].contiguous()
        against_fp32 = measure_speedup(teacher, student, x, args.repeats)
        against_int8 = measure_speedup(teacher_int8, student, x, args.repeats)
        table.add_row(
            str(batch), f"{against_fp32['teacher_ms']:.2f}", f"{against_int8['teacher_ms']:.2f}", f"{against_fp32['student_ms']:.2f}",
            f"x{against_fp32['speedup']:.2f}", f"x{against_int8['speedup']:.2f}", f"x{1 / macs_ratio:.2f}",
        )  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
