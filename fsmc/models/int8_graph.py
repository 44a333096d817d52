"""The int8 model format: the FX graph mode, x86-backend graph of quantized modules that fsmc's int8 schemes produce.

:mod:`fsmc.compress.quantization` makes such graphs (PTQ, QAT); checkpoints
(:mod:`fsmc.models.checkpoint`) store their state dict and rebuild the same graph with
:func:`quantized_skeleton` to load it into. The format lives with the models, not with the
compression that produces it, so loading a checkpoint never imports the compression code.
torch's eager and FX quantization APIs print a deprecation warning in 2.14 (PT2E moved to
torchao); FX is kept because it needs no extra package and really runs int8 kernels
(notes/stack.md measured 2.6-5x the fp32 speed).
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
from torch import nn

BACKEND = "x86"
QUANTIZATION_TAG = "int8-x86-fx"


def fx_quantization_api() -> tuple[Any, Any, Any, Any, Any]:
    """(default qconfig mapping, default QAT qconfig mapping, prepare_fx, prepare_qat_fx, convert_fx), imported quietly."""
    # Imported lazily and quietly: the module import alone emits the deprecation warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import get_default_qat_qconfig_mapping, get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx, prepare_qat_fx
    return get_default_qconfig_mapping, get_default_qat_qconfig_mapping, prepare_fx, prepare_qat_fx, convert_fx


def quietly(function, *args, **kwargs):
    """``function(*args, **kwargs)`` with torch's quantization deprecation warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def quantized_skeleton(float_model: nn.Module, example: torch.Tensor) -> torch.fx.GraphModule:
    """The int8 graph of ``float_model`` with placeholder quantization parameters, to load a state dict into."""
    qconfig, _, prepare_fx, _, convert_fx = fx_quantization_api()
    torch.backends.quantized.engine = BACKEND
    prepared = quietly(prepare_fx, copy.deepcopy(float_model).cpu().eval(), qconfig(BACKEND), example_inputs=(example[:1],))
    with torch.inference_mode():
        prepared(example[:1])  # observers need one pass before convert
    return quietly(convert_fx, prepared)


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
