"""A student as shipped: an ONNX file and the inference runtime that runs it (``runtime.json`` beside it).

This one file is all a registered version needs to run outside fsmc: MLflow copies it into the model's
``code/`` folder and loads it as the ``python_function`` flavor (``_load_pyfunc``), so
``mlflow.pyfunc.load_model`` and ``mlflow models serve`` run the same runtime, precision and thread count
that fsmc measured and evaluated. It imports only numpy and, lazily, the runtime it names; keep it so.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

MODEL_FILE = "model.onnx"
CONFIG_FILE = "runtime.json"
ONNX_RUNTIMES = ("openvino", "onnxruntime")  # the runtimes that run the ONNX file (torch runs the module itself)


def compile_onnx(model: bytes | str | Path, runtime: str, precision: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """A function from float32 images (N x C x H x W) to logits, running ``model`` (ONNX bytes or file) in ``runtime``.

    ``precision`` is ``fp32`` or ``bf16`` (OpenVINO only: its bf16 kernels on AVX-512-BF16 / AMX).
    Raises ImportError when the runtime is not installed.
    """
    if runtime == "openvino":
        return _openvino_runner(model, precision, threads)
    if runtime == "onnxruntime":
        import onnxruntime

        if precision != "fp32":
            raise ValueError(f"onnxruntime runs fp32 here, not {precision}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            model if isinstance(model, bytes) else str(model), options, providers=["CPUExecutionProvider"]
        )
        input_name = session.get_inputs()[0].name

        def run_onnxruntime(images: np.ndarray) -> np.ndarray:
            return session.run(None, {input_name: np.ascontiguousarray(images, dtype=np.float32)})[0].astype(np.float32)

        return run_onnxruntime
    raise ValueError(f"unknown ONNX runtime {runtime!r}; known: {', '.join(ONNX_RUNTIMES)}")


STATIC_SHAPES = 8  # input shapes compiled statically (one per batch size seen); later shapes share one dynamic model


def _openvino_runner(model: bytes | str | Path, precision: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """OpenVINO on the CPU, one model compiled per input shape, each with its input buffer bound once.

    A model compiled for a static shape runs ResNet-56 at batch 1 in 0.36 ms where the same model with a
    dynamic batch axis takes 0.50 ms (per-call shape inference): each batch size seen is compiled once,
    on first use, up to :data:`STATIC_SHAPES` of them; beyond that the dynamic model serves.
    The images are copied into a buffer bound to the request when it was made and ``infer()`` runs without
    arguments: passing them as ``infer({0: images})`` costs ~60 µs a call in OpenVINO's Python input dispatch,
    a quarter of a block-dropped ResNet-56's 0.27 ms at batch 1 (benchmarks/LOG.md, "The runner's overhead").
    """
    import openvino

    core = openvino.Core()
    source = core.read_model(model if isinstance(model, bytes) else str(model))
    config = {
        "INFERENCE_NUM_THREADS": int(threads),
        "PERFORMANCE_HINT": "LATENCY",
        # Named explicitly: OpenVINO would pick bf16 by itself on AMX, and what ships must be what was measured.
        "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
    }
    dynamic = core.compile_model(source, "CPU", config).create_infer_request()
    bound: dict[tuple[int, ...], tuple[object, np.ndarray, object]] = {}  # shape -> (request, its input buffer, its output tensor)
    lock = threading.Lock()  # infer requests and their buffers are not reentrant: a server may call predict from several threads

    def bind(shape: tuple[int, ...]) -> tuple[object, np.ndarray, object]:
        static = source.clone()
        static.reshape({static.inputs[0]: list(shape)})
        request = core.compile_model(static, "CPU", config).create_infer_request()
        buffer = np.zeros(shape, dtype=np.float32)
        request.set_input_tensor(openvino.Tensor(buffer, shared_memory=True))
        return request, buffer, request.get_output_tensor(0)

    def run_openvino(images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        with lock:
            if images.shape not in bound and len(bound) < STATIC_SHAPES:
                bound[images.shape] = bind(images.shape)
            if images.shape not in bound:
                return np.array(dynamic.infer({0: np.ascontiguousarray(images)})[0], dtype=np.float32)
            request, buffer, output = bound[images.shape]
            np.copyto(buffer, images)
            request.infer()
            # A view of the request's output buffer, which the next call overwrites: copied.
            return np.array(output.data, dtype=np.float32)

    return run_openvino


class ShippedModel:
    """The shipped student in ``folder``: ``predict(images)`` gives its logits in the recorded runtime."""

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        self.config: dict = json.loads((folder / CONFIG_FILE).read_text())
        self._run = compile_onnx(folder / MODEL_FILE, self.config["runtime"], self.config["precision"], self.config["threads"])

    def predict(self, images, params: dict | None = None) -> np.ndarray:
        """Logits (float32, N x classes) of float32 images in [0, 1], N x C x H x W (normalisation is inside)."""
        return self._run(np.asarray(images, dtype=np.float32))


def _load_pyfunc(path: str) -> ShippedModel:
    """MLflow's entry point for the ``python_function`` flavor (``loader_module`` of the registered version)."""
    return ShippedModel(path)
