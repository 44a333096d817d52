"""Layer-level access for the layer-wise methods (fskd, cd): inputs and outputs of one named layer.

A forward pass is cut short right after the layer of interest (a hook raises), so
capturing the input of layer ``l`` costs only the layers before it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from fsmc.compress.pruning import KeptChannels
from fsmc.runtime import pick_device


class _Captured(Exception):
    pass


def compressed_layers(student: nn.Module, teacher: nn.Module) -> list[str]:
    """Conv/linear layers of ``student`` that differ from the teacher's in shape or carry a sparsity mask, in order."""
    teacher_modules = dict(teacher.named_modules())
    names = []
    for name, module in student.named_modules():
        if not isinstance(module, (nn.Conv2d, nn.Linear)) or name not in teacher_modules:
            continue
        if module.weight.shape != teacher_modules[name].weight.shape or parametrize.is_parametrized(module, "weight"):
            names.append(name)
    return names


def capture(model: nn.Module, layer: str, images: torch.Tensor, what: str, batch_size: int = 256) -> torch.Tensor:
    """The input (``what="input"``) or output (``"output"``) of ``model``'s ``layer`` on ``images`` (CPU tensor)."""
    module = dict(model.named_modules())[layer]
    device, was_training = pick_device(), model.training
    home = next(model.parameters(), torch.empty(0)).device
    model.to(device).eval()
    chunks: list[torch.Tensor] = []

    def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        chunks.append((inputs[0] if what == "input" else output).detach().float().cpu())
        raise _Captured

    handle = module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                try:
                    model(images[start : start + batch_size].to(device))
                except _Captured:
                    pass
    finally:
        handle.remove()
        model.to(home).train(was_training)
    return torch.cat(chunks)


def kept_outputs(kept: KeptChannels, layer: str, width: int) -> list[int]:
    """Teacher output channels the student layer kept (all when its outputs were not pruned)."""
    return kept.outputs.get(layer, list(range(width)))


def kept_inputs(kept: KeptChannels, layer: str, width: int) -> list[int]:
    """Teacher input channels the student layer kept (all when its inputs were not pruned)."""
    return kept.inputs.get(layer, list(range(width)))


def apply_weight(module: nn.Module, inputs: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``module``'s operation on ``inputs`` with ``weight`` in place of its own (bias and geometry kept)."""
    bias = module.bias
    if isinstance(module, nn.Conv2d):
        return module._conv_forward(inputs, weight, bias)
    return nn.functional.linear(inputs, weight, bias)


def channels_last(tensor: torch.Tensor) -> torch.Tensor:
    """N x C (x H x W) -> rows of C values, one per image and position."""
    if tensor.dim() == 4:
        return tensor.permute(0, 2, 3, 1).reshape(-1, tensor.shape[1])
    return tensor
