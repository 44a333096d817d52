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
CPU only. Checkpoints store its state dict plus the float layer shapes, and
:func:`quantized_skeleton` rebuilds the same graph to load it into. torch's eager and
FX quantization APIs print a deprecation warning in 2.14 (PT2E moved to torchao); FX
is kept because it needs no extra package and really runs int8 kernels
(notes/stack.md measured 2.6-5x the fp32 speed).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from fsmc.models.tracing import traced

BACKEND = "x86"
_INSTEAD = "Use scheme=channel or unstructured for this model (they need no trace)."
QUANTIZATION_TAG = "int8-x86-fx"


def _fx():
    # Imported lazily and quietly: the module import alone emits the deprecation warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import get_default_qat_qconfig_mapping, get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx, prepare_qat_fx
    return get_default_qconfig_mapping, get_default_qat_qconfig_mapping, prepare_fx, prepare_qat_fx, convert_fx


def _quietly(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def quantize_ptq(model: nn.Module, calibration: torch.Tensor, batch_size: int = 128) -> torch.fx.GraphModule:
    """Post-training static int8 quantization of a copy of ``model``, calibrated on ``calibration`` images."""
    qconfig, _, prepare_fx, _, convert_fx = _fx()
    torch.backends.quantized.engine = BACKEND
    float_model = copy.deepcopy(model).cpu().eval()
    prepared = traced(
        lambda: _quietly(prepare_fx, float_model, qconfig(BACKEND), example_inputs=(calibration[:1],)), "scheme=int8-ptq", _INSTEAD
    )
    with torch.inference_mode():
        for start in range(0, len(calibration), batch_size):
            prepared(calibration[start : start + batch_size])
    return _quietly(convert_fx, prepared)


def prepare_qat(model: nn.Module, example: torch.Tensor) -> torch.fx.GraphModule:
    """A trainable copy of ``model`` with fused conv-BN and fake-quant on weights and activations."""
    _, qat_qconfig, _, prepare_qat_fx, _ = _fx()
    float_model = copy.deepcopy(model).cpu().train()
    return traced(
        lambda: _quietly(prepare_qat_fx, float_model, qat_qconfig(BACKEND), example_inputs=(example[:1].cpu(),)), "scheme=int8-qat", _INSTEAD
    )


def convert_qat(prepared: nn.Module) -> torch.fx.GraphModule:
    """The real int8 model of a QAT-trained graph (CPU, eval mode)."""
    _, _, _, _, convert_fx = _fx()
    torch.backends.quantized.engine = BACKEND
    return _quietly(convert_fx, copy.deepcopy(prepared).cpu().eval())


def quantized_skeleton(float_model: nn.Module, example: torch.Tensor) -> torch.fx.GraphModule:
    """The int8 graph of ``float_model`` with placeholder quantization parameters, to load a state dict into."""
    qconfig, _, prepare_fx, _, convert_fx = _fx()
    torch.backends.quantized.engine = BACKEND
    prepared = _quietly(prepare_fx, copy.deepcopy(float_model).cpu().eval(), qconfig(BACKEND), example_inputs=(example[:1],))
    with torch.inference_mode():
        prepared(example[:1])  # observers need one pass before convert
    return _quietly(convert_fx, prepared)


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


def is_quantized(model: nn.Module) -> bool:
    """Whether ``model`` holds int8 quantized modules (and so runs on CPU only)."""
    return any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in model.modules())


def runs_int8_kernels(model: nn.Module, example: torch.Tensor) -> bool:
    """Whether a forward pass of ``model`` runs its convolutions on quantized (quint8) tensors.

    Checked on what actually flows: a hook on every conv module records its output dtype.
    """
    dtypes: list[torch.dtype] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype))
        for m in model.modules()
        if "Conv" in type(m).__name__
    ]
    try:
        with torch.inference_mode():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    return bool(dtypes) and all(dtype == torch.quint8 for dtype in dtypes)
