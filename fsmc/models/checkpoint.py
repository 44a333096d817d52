"""Checkpoints that load with ``torch.load(weights_only=True)``, pruned or not.

A checkpoint is ``{"format", "spec", "state_dict", "meta"}`` of plain tensors and
containers. Pruned models have narrower layers than their spec builds, so the
loader first resizes every Conv2d / BatchNorm2d / Linear to the shapes in the
state dict, then loads the weights strictly.

int8 models (``fsmc.models.int8_graph``) are FX graphs of quantized modules:
their checkpoint also records the float layer shapes and the input shape, so the
loader rebuilds the float net, re-derives the same int8 graph and loads into it.
Their scalar quantization parameters are stored as plain numbers, not as one tiny
tensor record each, which keeps the file close to one byte per weight.
"""

from __future__ import annotations

import io
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fsmc.atomic import write_bytes
from fsmc.errors import FsmcError
from fsmc.models.int8_graph import QUANTIZATION_TAG, quantized_skeleton
from fsmc.models.normalized import NormalizedClassifier
from fsmc.models.zoo import build

FORMAT = "fsmc-checkpoint/1"


def quantized_meta(float_model: nn.Module, example: torch.Tensor) -> dict[str, Any]:
    """What a checkpoint of the int8 version of ``float_model`` must record to be rebuilt."""
    return {
        "quantization": QUANTIZATION_TAG,
        "float_shapes": {k: list(v.shape) for k, v in float_model.state_dict().items()},
        "input_shape": list(example.shape[1:]),
    }


def _is_per_channel(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.is_quantized and value.qscheme() == torch.per_channel_affine


def _pack_per_channel(value: torch.Tensor) -> dict[str, Any]:
    """int8 values plus float32 scales and int32 zero points (torch keeps float64 / int64 per channel)."""
    scales = value.q_per_channel_scales()
    if not torch.equal(scales.float().double(), scales):
        raise ValueError("per-channel scales are not float32-exact")  # never seen: observers compute in float32
    return {
        "values": value.int_repr(),
        "scales": scales.float(),
        "zero_points": value.q_per_channel_zero_points().int(),
        "axis": int(value.q_per_channel_axis()),
    }


def _unpack_per_channel(packed: dict[str, Any]) -> torch.Tensor:
    return torch._make_per_channel_quantized_tensor(
        packed["values"], packed["scales"].double(), packed["zero_points"].long(), packed["axis"]
    )


def save_checkpoint(path: Path, model: nn.Module, spec: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
    """Atomically save ``model`` with the spec that rebuilds it (int8 models: ``meta`` from :func:`quantized_meta`)."""
    meta = meta or {}
    state = {k: v.detach().cpu().clone() if isinstance(v, torch.Tensor) else v for k, v in model.state_dict().items()}
    blob: dict[str, Any] = {"format": FORMAT, "spec": spec, "meta": meta}
    if meta.get("quantization"):
        # Quantized modules read their state-dict version from this metadata (else they take a legacy path).
        blob["versions"] = {k: dict(v) for k, v in getattr(model.state_dict(), "_metadata", {}).items()}
        blob["scalars"] = {k: v.item() for k, v in state.items() if isinstance(v, torch.Tensor) and v.dim() == 0}
        blob["per_channel"] = {k: _pack_per_channel(v) for k, v in state.items() if _is_per_channel(v)}
        state = {k: v for k, v in state.items() if k not in blob["scalars"] and k not in blob["per_channel"]}
    blob["state_dict"] = state
    buffer = io.BytesIO()
    torch.save(blob, buffer)
    write_bytes(path, buffer.getvalue())


def _resize_to(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Give each layer the parameter shapes found in ``state`` (for pruned models)."""
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        weight = state.get(prefix + "weight")
        if weight is None:
            continue
        if isinstance(module, nn.Conv2d):
            if module.groups > 1:  # grouped / depthwise: pruning removed whole groups, each as wide as before
                module.groups = weight.shape[0] // (module.out_channels // module.groups)
            module.out_channels, module.in_channels = weight.shape[0], weight.shape[1] * module.groups
        elif isinstance(module, nn.Linear):
            module.out_features, module.in_features = weight.shape
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):  # BatchNorm1d/2d
            module.num_features = weight.shape[0]
        else:
            continue
        for key, tensor in module.named_parameters(recurse=False):
            setattr(module, key, nn.Parameter(torch.empty_like(state[prefix + key])))
        for key, tensor in module.named_buffers(recurse=False):
            if prefix + key in state:
                module.register_buffer(key, torch.empty_like(state[prefix + key]))


def without_blocks(model: nn.Module, dropped: list[str]) -> nn.Module:
    """``model`` with each named block replaced by the identity (scheme ``block-drop``; also how its checkpoint is rebuilt)."""
    for name in dropped:
        model.set_submodule(name, nn.Identity())
    return model


def load_checkpoint(path: Path) -> tuple[NormalizedClassifier, dict[str, Any], dict[str, Any]]:
    """Load a checkpoint written by :func:`save_checkpoint`; returns (model in eval mode, spec, meta)."""
    path = Path(path)
    if not path.is_file():
        raise FsmcError(f"Checkpoint {str(path)!r} does not exist; run the stage that writes it first.")
    try:
        with warnings.catch_warnings():
            # torch's own loader of int8 (quantized) tensors calls its deprecated TypedStorage: not the user's concern.
            warnings.filterwarnings("ignore", message="TypedStorage is deprecated", category=UserWarning)
            blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise FsmcError(f"Checkpoint {path} could not be loaded safely (weights_only=True): {error}") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise FsmcError(f"{path} is not an fsmc checkpoint (expected format {FORMAT!r}).")
    meta = blob["meta"]
    model = without_blocks(build(blob["spec"]), meta.get("dropped_blocks", []))
    if meta.get("quantization") == QUANTIZATION_TAG:
        return _load_quantized(model, blob), blob["spec"], meta
    _resize_to(model, blob["state_dict"])
    model.load_state_dict(blob["state_dict"], strict=True)
    return model.eval(), blob["spec"], meta


def _load_quantized(float_model: NormalizedClassifier, blob: dict[str, Any]) -> nn.Module:
    meta = blob["meta"]
    _resize_to(float_model, {k: torch.empty(shape) for k, shape in meta["float_shapes"].items()})
    with torch.no_grad():  # finite placeholders: the observers of the skeleton's one pass must see numbers
        for key, tensor in float_model.state_dict().items():
            if tensor.is_floating_point():
                tensor.fill_(1.0 if key.endswith(("running_var", "std")) else 0.0)
    quantized = quantized_skeleton(float_model, torch.zeros(1, *meta["input_shape"]))
    reference = quantized.state_dict()
    state = dict(blob["state_dict"])
    for key, packed in blob.get("per_channel", {}).items():
        state[key] = _unpack_per_channel(packed)
    for key, value in blob.get("scalars", {}).items():
        state[key] = torch.tensor(value, dtype=reference[key].dtype)
    state = OrderedDict(state)
    state._metadata = OrderedDict(blob.get("versions", {}))  # type: ignore[attr-defined]
    quantized.load_state_dict(state, strict=True)
    return quantized.eval()
