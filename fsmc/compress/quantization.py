"""int8 quantization with torch's own FX graph mode, x86 backend (fbgemm/oneDNN int8 kernels on CPU).

* ``int8-ptq``: post-training static quantization. Conv-BN-ReLU are fused, activation
  ranges are observed on calibration images (few-shot + OOD: the OOD pool doubles as
  calibration data the privacy constraint allows), then converted. Weights are
  per-channel symmetric int8, activations per-tensor affine uint8
  (``get_default_qconfig_mapping("x86")``).
* ``int8-qat``: quantization-aware training (Ali et al. 2024's QAT A8 setting, here
  8-bit weights and activations): fake-quant modules are inserted, the recovery
  method trains through them, then the model is converted to real int8.

The converted model is a ``torch.fx.GraphModule`` of quantized modules; it runs on
CPU only. Its format (backend, tag, how a checkpoint rebuilds it) is
:mod:`fsmc.models.int8_graph`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from fsmc.models.int8_graph import BACKEND, fx_quantization_api, quietly
from fsmc.models.tracing import traced

_INSTEAD = "Use scheme=channel or unstructured for this model (they need no trace)."


def quantize_ptq(model: nn.Module, calibration: torch.Tensor, batch_size: int = 128) -> torch.fx.GraphModule:
    """Post-training static int8 quantization of a copy of ``model``, calibrated on ``calibration`` images."""
    qconfig, _, prepare_fx, _, convert_fx = fx_quantization_api()
    torch.backends.quantized.engine = BACKEND
    float_model = copy.deepcopy(model).cpu().eval()
    prepared = traced(
        lambda: quietly(prepare_fx, float_model, qconfig(BACKEND), example_inputs=(calibration[:1],)), "scheme=int8-ptq", _INSTEAD
    )
    with torch.inference_mode():
        for start in range(0, len(calibration), batch_size):
            prepared(calibration[start : start + batch_size])
    return quietly(convert_fx, prepared)


def prepare_qat(model: nn.Module, example: torch.Tensor) -> torch.fx.GraphModule:
    """A trainable copy of ``model`` with fused conv-BN and fake-quant on weights and activations."""
    _, qat_qconfig, _, prepare_qat_fx, _ = fx_quantization_api()
    float_model = copy.deepcopy(model).cpu().train()
    return traced(
        lambda: quietly(prepare_qat_fx, float_model, qat_qconfig(BACKEND), example_inputs=(example[:1].cpu(),)), "scheme=int8-qat", _INSTEAD
    )


def convert_qat(prepared: nn.Module) -> torch.fx.GraphModule:
    """The real int8 model of a QAT-trained graph (CPU, eval mode)."""
    _, _, _, _, convert_fx = fx_quantization_api()
    torch.backends.quantized.engine = BACKEND
    return quietly(convert_fx, copy.deepcopy(prepared).cpu().eval())


@contextmanager
def observers_frozen(model: nn.Module) -> Iterator[None]:
    """Fake-quant observers off for a while (e.g. a held-out evaluation during QAT), restored after.

    FakeQuantize observes in eval mode too, so without this held-out images would shape the int8 ranges.
    """
    quantizers = [m for m in model.modules() if isinstance(getattr(m, "observer_enabled", None), torch.Tensor)]
    saved = [q.observer_enabled.clone() for q in quantizers]
    for quantizer in quantizers:
        quantizer.observer_enabled.fill_(0)
    try:
        yield
    finally:
        for quantizer, state in zip(quantizers, saved):
            quantizer.observer_enabled.copy_(state)
