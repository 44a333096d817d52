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
    """OpenVINO on the CPU, one model compiled per input shape.

    A model compiled for a static shape runs ResNet-56 at batch 1 in 0.36 ms where the same model with a
    dynamic batch axis takes 0.50 ms (per-call shape inference): each batch size seen is compiled once,
    on first use, up to :data:`STATIC_SHAPES` of them; beyond that the dynamic model serves.
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
    requests: dict[tuple[int, ...] | None, object] = {None: core.compile_model(source, "CPU", config).create_infer_request()}
    lock = threading.Lock()  # infer requests are not reentrant: a server may call predict from several threads

    def request_for(shape: tuple[int, ...]):
        if shape not in requests and len(requests) <= STATIC_SHAPES:
            static = source.clone()
            static.reshape({static.inputs[0]: list(shape)})
            requests[shape] = core.compile_model(static, "CPU", config).create_infer_request()
        return requests.get(shape, requests[None])

    def run_openvino(images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, dtype=np.float32)
        with lock:
            request = request_for(images.shape)
            # The output is a view of the request's buffer, which the next call overwrites: copied.
            return np.array(request.infer({0: images}, share_inputs=True, share_outputs=True)[0], dtype=np.float32)

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
