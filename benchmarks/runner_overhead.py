"""What a call costs beyond the network: fsmc's OpenVINO runner against OpenVINO's own ways to call, at batch 1.

At batch 1 a block-dropped ResNet-56 runs in ~0.2 ms, so tens of microseconds spent handing the images over are a
large part of what a user waits for, and they dilute the compression speed-up (the same cost sits on the teacher's
side and on the student's). Each row times the teacher and the student of one run folder alternately
(``fsmc.shipping.latency.time_alternately``) in OpenVINO at the precision fsmc ships on this CPU, 1 thread:

* ``fsmc runner``: ``fsmc.shipping.shipped_model.compile_onnx``, what ``ship`` registers and the gate and ``fsmc tune`` time;
* ``infer({0: x}) dispatch``: the request called with its input, as fsmc called it before (``share_inputs`` and
  ``share_outputs`` on): OpenVINO's Python input dispatch runs on every call;
* ``bound infer()``: the floor, a request whose input tensor was bound once, called without arguments and its
  output not read.

    python benchmarks/runner_overhead.py runs/<time>-<id> [--batches 1 64] [--seconds 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import openvino
from rich.console import Console
from rich.table import Table

from fsmc.config import load_params
from fsmc.cpu_info import cpu_flags, cpu_model
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.export import to_onnx
from fsmc.models.checkpoint import load_checkpoint
from fsmc.shipping.latency import time_alternately, timed_batch
from fsmc.shipping.shipped_model import compile_onnx
from fsmc.workspace import Workspace


def openvino_request(onnx: bytes, shape: tuple[int, ...], precision: str):
    """A request of ``onnx`` compiled for ``shape`` as fsmc compiles it (1 thread, latency hint, ``precision``)."""
    core = openvino.Core()
    model = core.read_model(onnx)
    model.reshape({model.inputs[0]: list(shape)})
    config = {"INFERENCE_NUM_THREADS": 1, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
    return core.compile_model(model, "CPU", config).create_infer_request()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_folder", type=Path)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per row and batch")
    args = parser.parse_args()
    ws = Workspace(args.run_folder)
    precision = "bf16" if "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES") else "fp32"
    test = load_dataset(load_params(ws.run_params).data).test
    test_images = to_tensor(test.images[:64], test.pixel_max)
    models = {role: load_checkpoint(path)[0].eval() for role, path in (("teacher", ws.teacher_model), ("student", ws.student_model))}
    onnx = {role: to_onnx(model, test_images[:1]) for role, model in models.items()}
    console = Console()
    console.print(f"CPU: {cpu_model()}; flags: {cpu_flags()}; OpenVINO {openvino.__version__} {precision}, 1 thread; run {args.run_folder.name}")
    for batch in args.batches:
        images = timed_batch(test_images.numpy(), batch)
        calls = {}
        for role, blob in onnx.items():
            run = compile_onnx(blob, "openvino", precision, 1)
            calls[("fsmc runner", role)] = lambda run=run: run(images)
            dispatched = openvino_request(blob, images.shape, precision)
            calls[("infer({0: x}) dispatch", role)] = lambda r=dispatched: r.infer({0: images}, share_inputs=True, share_outputs=True)
            bound = openvino_request(blob, images.shape, precision)
            bound.set_input_tensor(openvino.Tensor(images, shared_memory=True))
            calls[("bound infer()", role)] = lambda r=bound: r.infer()
        timed = time_alternately(calls, batch, args.seconds * len(calls))
        table = Table(title=f"batch {batch}: median ms (p90), teacher and student alternately")
        for column in ("call", "teacher", "student", "speed-up", "student over the floor"):
            table.add_column(column, justify="left" if column == "call" else "right")
        floor = timed[("bound infer()", "student")].median_ms
        for way in ("fsmc runner", "infer({0: x}) dispatch", "bound infer()"):
            teacher, student = timed[(way, "teacher")], timed[(way, "student")]
            table.add_row(
                way, f"{teacher.median_ms:.4f} ({teacher.p90_ms:.4f})", f"{student.median_ms:.4f} ({student.p90_ms:.4f})",
                f"x{teacher.median_ms / student.median_ms:.3f}", f"+{1000 * (student.median_ms - floor):.1f} µs",
            )  # fmt: skip
        console.print(table)


if __name__ == "__main__":
    main()
