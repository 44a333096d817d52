"""Which runtime ships the student: every usable (runtime, precision, threads) measured on this CPU, the fastest kept.

A runtime is usable when it is installed, runs the student's ONNX file, and agrees with torch on at least
``ship.min_agreement`` of the test predictions (bf16 may flip a few near-ties; more means it broke something),
or, given the images' labels, is no less accurate than torch on them (:func:`no_less_accurate`): an int8 model's
requantization rounds differently in each runtime, and on a low-margin student that flips more near-ties than
``min_agreement`` allows without costing accuracy (a user's MobileNetV3-small at 68 %: OpenVINO int8 agreed with
torch's int8 on 95.7 % of the predictions, and was 67.7 % accurate against torch's 67.1, at 0.42 ms against 5.2).
A runtime that is missing or fails falls back to the next with a one-line notice, down to torch eager, which
always runs.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from fsmc.config import ShipParams
from fsmc.shipping.latency import Latency, time_alternately, timed_batch
from fsmc.shipping.shipped_model import compile_onnx

FALLBACK_ORDER = ("openvino", "onnxruntime", "torch")  # fastest first, as measured on both kinds of CPU (issue 32)
# Within this share of the fastest median, the configuration with fewer threads is kept. At batch 1 one thread and
# all cores are often within noise of each other, and a choice flipping on noise showed: issue 33's search timed
# block-drop 60 % with 2 threads at 0.345 ms where 1 thread ran it in 0.274 ms. Fewer threads also leave cores to
# the server's other requests.
FEWER_THREADS_TOLERANCE = 0.10
INSTALL = {"openvino": "openvino==2026.4.1", "onnxruntime": "onnxruntime==1.32.0"}


@dataclass(frozen=True)
class RuntimeChoice:
    """One way to run a model: the runtime, its arithmetic precision and its thread count."""

    runtime: str
    precision: str
    threads: int

    @property
    def label(self) -> str:
        """E.g. ``openvino bf16, 1 thread``."""
        return f"{self.runtime} {self.precision}, {self.threads} thread{'s' if self.threads != 1 else ''}"

    def to_dict(self) -> dict:
        """Plain values for JSON (``runtime.json`` of the shipped folder)."""
        return asdict(self)


def torch_runner(model: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """Torch eager fp32, as a user runs the module: ``model(x)`` under inference mode, torch's own thread count."""
    model = model.cpu().eval()

    def run_torch(images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))).float().numpy()

    return run_torch


def runner(choice: RuntimeChoice, module: nn.Module, onnx_bytes: bytes | None) -> Callable[[np.ndarray], np.ndarray]:
    """``module`` (or its ONNX file) run as ``choice`` says."""
    if choice.runtime == "torch":
        return torch_runner(module)
    if onnx_bytes is None:
        raise ValueError("the model has no ONNX file to run")
    return compile_onnx(onnx_bytes, choice.runtime, choice.precision, choice.threads)


def _missing(runtime: str) -> str | None:
    """Why ``runtime`` cannot run here (not installed), or None."""
    if runtime == "torch":
        return None
    try:
        importlib.import_module(runtime)
    except ImportError as error:
        return f"{runtime} is not installed ({error}; `pip install {INSTALL[runtime]}`)"
    return None


def _bf16_native(runtime: str) -> bool:
    """Whether ``runtime`` computes bf16 natively on this CPU (OpenVINO on AVX-512-BF16 / AMX)."""
    if runtime != "openvino":
        return False
    import openvino

    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def candidates(ship: ShipParams, onnx_ok: bool) -> tuple[list[RuntimeChoice], list[str]]:
    """The configurations worth measuring under ``ship``, and a one-line notice for each runtime that had to be left out."""
    notices: list[str] = []
    wanted = FALLBACK_ORDER if ship.runtime == "auto" else FALLBACK_ORDER[FALLBACK_ORDER.index(ship.runtime) :]
    runtimes = []
    for runtime in wanted:
        reason = _missing(runtime) if (onnx_ok or runtime == "torch") else "the student could not be exported to ONNX"
        if reason:
            notices.append(f"ship: {runtime} left out: {reason}.")
            continue
        runtimes.append(runtime)
        if ship.runtime != "auto":  # the one asked for, or the first that runs after it
            break
    all_cores = torch.get_num_threads()
    threads = [ship.threads] if ship.threads else sorted({1, all_cores})
    found = []
    for runtime in runtimes:
        if runtime == "torch":  # torch's thread count is process-wide: the user's setting, not ours to change
            found.append(RuntimeChoice("torch", "fp32", all_cores))
            continue
        precision = "bf16" if ship.inference_precision == "auto" and _bf16_native(runtime) else "fp32"
        found += [RuntimeChoice(runtime, precision, n) for n in threads]
    return found, notices


def agreement(logits: np.ndarray, reference: np.ndarray) -> float:
    """Share of images whose predicted class is the same in both."""
    return float((logits.argmax(1) == reference.argmax(1)).mean())


def no_less_accurate(logits: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> bool:
    """Whether ``logits`` are not significantly less accurate than ``reference`` on ``labels``.

    McNemar's comparison on the same images: of the images only one of the two gets right, those only the reference
    gets right may exceed the others by up to two standard deviations of their difference (sqrt of their sum).
    """
    ours, theirs = logits.argmax(1) == labels, reference.argmax(1) == labels
    lost, won = int((theirs & ~ours).sum()), int((ours & ~theirs).sum())
    return lost - won <= 2 * math.sqrt(lost + won)


def top1_beside_torch(logits: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """A runtime's top-1 on ``labels`` and torch's (``reference``), for the report and its notice."""
    return {"top1": float((logits.argmax(1) == labels).mean()), "torch_top1": float((reference.argmax(1) == labels).mean())}


def accuracy_words(entry: dict) -> str:
    """The two top-1 figures of :func:`top1_beside_torch` as a notice says them."""
    return f"{100 * entry['top1']:.1f} % top-1 on their labels against torch's {100 * entry['torch_top1']:.1f} %"


def choose_runtime(
    student: nn.Module, onnx_bytes: bytes | None, images: np.ndarray, ship: ShipParams, also_at: int | None = None,
    labels: np.ndarray | None = None,
) -> tuple[RuntimeChoice, dict[str, dict], list[str]]:
    """The fastest usable configuration for ``student`` at ``ship.batch`` images, among :func:`candidates`.

    ``images`` (test images, float32 N x C x H x W) check each runtime's agreement with torch and make the
    timed batch. ``also_at``: another batch the run reports (the gate's); fewer threads are kept only when they
    cost little there too (:func:`fewer_threads_hold`). ``labels`` (of ``images``, optional): a runtime below
    ``ship.min_agreement`` is still kept when it is no less accurate than torch on them. Returns the choice, every
    candidate's figures (``{label: {"latency"|"skipped", ...}}``) and the notices.
    """
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"choose_runtime: {len(labels)} labels for {len(images)} images; pass the labels of exactly these images")
    options, notices = candidates(ship, onnx_bytes is not None)
    reference = torch_runner(student)(images)
    usable: dict[RuntimeChoice, Callable] = {}
    report: dict[str, dict] = {}
    for option in options:
        try:
            run = runner(option, student, onnx_bytes)
            logits = run(images)
            agreed = agreement(logits, reference)
        except Exception as error:  # a runtime that cannot run this model is skipped, not fatal: torch still can
            notices.append(f"ship: {option.label} could not run the student ({type(error).__name__}: {str(error)[:160]}).")
            report[option.label] = {**option.to_dict(), "skipped": f"{type(error).__name__}"}
            continue
        entry = {**option.to_dict(), "agreement": agreed}
        if agreed < ship.min_agreement:
            said = f"ship: {option.label} agrees with torch on {100 * agreed:.1f} % of {len(images)} test predictions"
            said += f" (ship.min_agreement {ship.min_agreement:g})"
            if labels is None or not no_less_accurate(logits, reference, labels):
                if labels is not None:
                    entry |= top1_beside_torch(logits, reference, labels)
                    said += f" and is less accurate ({accuracy_words(entry)})"
                notices.append(f"{said}; left out.")
                report[option.label] = {**entry, "skipped": f"agreement {agreed:.4f}"}
                continue
            entry |= top1_beside_torch(logits, reference, labels)
            notices.append(f"{said} but is not significantly less accurate ({accuracy_words(entry)}: it rounds near-ties differently); kept.")
        usable[option] = run
        report[option.label] = entry
    if not usable:  # only when even torch failed its own agreement: impossible, but say so plainly
        raise RuntimeError("no runtime could run the student")
    batch = timed_batch(images, ship.batch)
    timed: dict[RuntimeChoice, Latency] = time_alternately(
        {o: (lambda r=r: r(batch)) for o, r in usable.items()}, ship.batch, ship.timing_seconds
    )
    for option, latency in timed.items():
        report[option.label]["latency"] = latency.to_dict()
    chosen = fastest_with_fewest_threads(timed)
    fastest = min(timed, key=lambda o: timed[o].median_ms)
    if also_at and also_at != ship.batch and chosen.threads < fastest.threads:
        at_also = timed_batch(images, also_at)
        checked = time_alternately({o: (lambda r=usable[o]: r(at_also)) for o in (chosen, fastest)}, also_at, ship.timing_seconds)
        for option, latency in checked.items():
            report[option.label][f"latency_batch_{also_at}"] = latency.to_dict()
        if not fewer_threads_hold(checked[chosen], checked[fastest]):
            notices.append(
                f"ship: {chosen.label} was within {FEWER_THREADS_TOLERANCE:.0%} of {fastest.label} at batch {ship.batch} but "
                f"{checked[chosen].median_ms / checked[fastest].median_ms:.2f}x its time at batch {also_at}: shipping {fastest.label}."
            )
            chosen = fastest
    return chosen, report, notices


def fewer_threads_hold(fewer: Latency, more: Latency, tolerance: float = FEWER_THREADS_TOLERANCE) -> bool:
    """Whether fewer threads, kept at the choice's batch, stay within ``tolerance`` of more threads at another batch.

    At batch 1 a ResNet-56 student is overhead-bound and one thread ties two; at batch 64 one thread takes twice
    as long. The headline run on an AMD EPYC (AVX-512, no AMX) shipped such a student on one thread and its gate
    failed at x0.81 against the two-thread teacher (sixth session).
    """
    return fewer.median_ms <= more.median_ms * (1 + tolerance)


def fastest_with_fewest_threads(timed: dict[RuntimeChoice, Latency], tolerance: float = FEWER_THREADS_TOLERANCE) -> RuntimeChoice:
    """The configuration to ship: the fewest threads among those within ``tolerance`` of the fastest median, then the fastest."""
    fastest = min(latency.median_ms for latency in timed.values())
    near = [option for option, latency in timed.items() if latency.median_ms <= fastest * (1 + tolerance)]
    return min(near, key=lambda o: (o.threads, timed[o].median_ms))

