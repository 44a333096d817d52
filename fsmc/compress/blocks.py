"""Block dropping: remove whole residual blocks, the ones the network can best do without per MAC saved.

Width pruning leaves every layer in place, and at batch 1 a ResNet-56 on 2 cores is bound by its per-layer
overhead, not by its MACs: halving the width bought ×1.2–1.3 in every runtime measured (issue 32). Removing
depth removes layers. After PRACTISE (Wang et al., 2023, by MiR's authors), each droppable block is scored by
its *recoverability*: replace the block by a 1×1 convolution fitted in closed form (least squares, no labels)
to map the block's input to its output on the few-shot and OOD images, and measure how far the network's
pre-pool features then are from the teacher's (MSE over the teacher's feature variance). The blocks with the
lowest score per MAC saved are replaced by the identity (the 1×1 fit only ranks; nothing is added to the
student), and recovery fits the rest.

A block is droppable when its output has its input's shape: its shortcut is the identity, so without the
block the net still computes ``relu(x) = x`` on the (non-negative) output of the block before.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from fsmc.errors import FsmcError
from fsmc.models.checkpoint import without_blocks

BLOCK_TYPES = ("BasicBlock", "Bottleneck", "PreActBlock", "PreActBottleneck")  # torchvision, CIFAR ResNets, timm


def residual_blocks(model: nn.Module) -> list[str]:
    """Names of the residual blocks in ``model``, outermost first and in order (none nested in another)."""
    names: list[str] = []
    for name, module in model.named_modules():
        if type(module).__name__ in BLOCK_TYPES and not any(name.startswith(f"{outer}.") for outer in names):
            names.append(name)
    return names


def _shapes(model: nn.Module, names: list[str], example: torch.Tensor) -> dict[str, tuple[torch.Size, torch.Size]]:
    """Input and output shape of each named block on ``example``."""
    shapes: dict[str, tuple[torch.Size, torch.Size]] = {}
    hooks = [
        model.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, (i[0].shape, o.shape)))
        for name in names
    ]
    try:
        with torch.no_grad():
            model.eval()(example)
    finally:
        for hook in hooks:
            hook.remove()
    return shapes


def droppable_blocks(model: nn.Module, example: torch.Tensor) -> list[str]:
    """The residual blocks of ``model`` whose output has their input's shape (identity shortcut)."""
    names = residual_blocks(model)
    shapes = _shapes(model, names, example)
    return [name for name in names if name in shapes and shapes[name][0] == shapes[name][1]]


def fitted_adaptor(inputs: torch.Tensor, outputs: torch.Tensor, ridge: float = 1e-4) -> nn.Conv2d:
    """The 1×1 convolution (with bias) closest to ``inputs -> outputs`` in least squares, over every pixel."""
    channels = inputs.shape[1]
    x = inputs.permute(0, 2, 3, 1).reshape(-1, channels).double()
    y = outputs.permute(0, 2, 3, 1).reshape(-1, channels).double()
    x1 = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    gram = x1.T @ x1
    gram += ridge * gram.diagonal().mean() * torch.eye(len(gram), dtype=gram.dtype)
    solution = torch.linalg.solve(gram, x1.T @ y)  # (C + 1) x C
    conv = nn.Conv2d(channels, channels, 1)
    with torch.no_grad():
        conv.weight.copy_(solution[:-1].T.reshape(channels, channels, 1, 1).float())
        conv.bias.copy_(solution[-1].float())
    return conv


def recoverability(teacher: nn.Module, names: list[str], images: torch.Tensor) -> dict[str, float]:
    """Per block: pre-pool feature MSE to the teacher (÷ the teacher's feature variance) with the block replaced by its fitted 1×1 adaptor.

    One pass fits every block's adaptor (each in its own hook, so no block's activations outlive it); then
    one pass per block with its adaptor swapped in, and the block put back.
    """
    teacher = teacher.eval()
    adaptors: dict[str, nn.Conv2d] = {}

    def fit(module, inputs, output, name):
        adaptors[name] = fitted_adaptor(inputs[0].detach(), output.detach())

    hooks = [teacher.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: fit(m, i, o, name)) for name in names]
    try:
        with torch.no_grad():
            target = teacher.forward_features(images)
    finally:
        for hook in hooks:
            hook.remove()
    scale = target.var().clamp_min(1e-12)
    scores = {}
    for name in names:
        block = teacher.get_submodule(name)
        teacher.set_submodule(name, adaptors[name])
        try:
            with torch.no_grad():
                scores[name] = float(((teacher.forward_features(images) - target) ** 2).mean() / scale)
        finally:
            teacher.set_submodule(name, block)
    return scores


def block_macs(model: nn.Module, names: list[str], example: torch.Tensor) -> dict[str, int]:
    """Multiply-accumulates of each named block on ``example`` (convolutions and linear layers)."""
    macs = dict.fromkeys(names, 0)
    hooks = []
    for name in names:
        for layer in model.get_submodule(name).modules():
            if isinstance(layer, nn.Conv2d):
                def count(m, i, o, name=name):
                    macs[name] += o.numel() // o.shape[0] * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
                hooks.append(layer.register_forward_hook(count))
    try:
        with torch.no_grad():
            model.eval()(example[:1])
    finally:
        for hook in hooks:
            hook.remove()
    return macs


def drop_blocks(teacher: nn.Module, fraction: float, images: torch.Tensor, example: torch.Tensor) -> tuple[nn.Module, dict]:
    """A copy of ``teacher`` without the ``fraction`` of its droppable blocks that cost least per MAC saved.

    Returns the student and a record: the dropped blocks (what the checkpoint needs to rebuild it) and each
    candidate's score, damage and MACs.

    Raises:
        FsmcError: when the teacher has no droppable residual block.
    """
    names = droppable_blocks(teacher, example)
    if not names:
        raise FsmcError(
            f"compress.scheme=block-drop removes residual blocks whose output has their input's shape, and the teacher "
            f"({type(teacher).__name__}) has none (block types looked for: {', '.join(BLOCK_TYPES)}). Use a residual "
            "network as the teacher, or another scheme (channel, distill)."
        )
    damage = recoverability(teacher, names, images)
    macs = block_macs(teacher, names, example)
    score = {name: damage[name] / max(macs[name], 1) for name in names}
    count = min(len(names), max(1, round(fraction * len(names))))
    dropped = sorted(sorted(names, key=lambda n: (score[n], names.index(n)))[:count], key=names.index)
    student = without_blocks(copy.deepcopy(teacher), dropped)
    record = {
        "dropped_blocks": dropped,
        "candidates": {name: {"damage": round(damage[name], 6), "macs": macs[name]} for name in names},
    }
    return student, record

