"""Checkpoints that load with ``torch.load(weights_only=True)``, pruned or not.

A checkpoint is ``{"format", "spec", "state_dict", "meta"}`` of plain tensors and
containers. Pruned models have narrower layers than their spec builds, so the
loader first resizes every Conv2d / BatchNorm2d / Linear to the shapes in the
state dict, then loads the weights strictly.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fsmc.atomic import write_bytes
from fsmc.errors import FsmcError
from fsmc.models.normalized import NormalizedClassifier
from fsmc.models.zoo import build

FORMAT = "fsmc-checkpoint/1"


def save_checkpoint(path: Path, model: NormalizedClassifier, spec: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
    """Atomically save ``model`` with the spec that rebuilds it."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "spec": spec, "state_dict": state, "meta": meta or {}}, buffer)
    write_bytes(path, buffer.getvalue())


def _resize_to(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Give each layer the parameter shapes found in ``state`` (for pruned models)."""
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        weight = state.get(prefix + "weight")
        if weight is None:
            continue
        if isinstance(module, nn.Conv2d):
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


def load_checkpoint(path: Path) -> tuple[NormalizedClassifier, dict[str, Any], dict[str, Any]]:
    """Load a checkpoint written by :func:`save_checkpoint`; returns (model in eval mode, spec, meta)."""
    path = Path(path)
    if not path.is_file():
        raise FsmcError(f"Checkpoint {str(path)!r} does not exist; run the stage that writes it first.")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise FsmcError(f"Checkpoint {path} could not be loaded safely (weights_only=True): {error}") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise FsmcError(f"{path} is not an fsmc checkpoint (expected format {FORMAT!r}).")
    model = build(blob["spec"])
    _resize_to(model, blob["state_dict"])
    model.load_state_dict(blob["state_dict"], strict=True)
    return model.eval(), blob["spec"], blob["meta"]
