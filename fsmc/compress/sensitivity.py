"""How much each prunable layer's channels matter, measured without labels, and what removing them saves.

Uniform pruning removes the same share of every layer, yet a layer early in a ResNet or one that feeds a
bottleneck hurts far more per channel than its neighbours. For each prunable group (torch-pruning's
dependency groups, named by the layer whose output channels go), the teacher is pruned in that group alone
at a few ratios (the group's own importance ranking decides which channels), and the *damage* is the
pre-pool feature MSE to the unpruned teacher on the few-shot and OOD images, over the teacher's feature
variance: the quantity MiR then recovers, and no label is needed. Beside it, the MACs each ratio saves.
:mod:`fsmc.compress.allocation` turns these curves into per-layer ratios.

The table is deterministic for a given teacher, image set and criterion, and costs one forward pass of the
images per (layer, ratio), so it is cached by content (teacher weights, images, ratios, criterion, code,
device) and shared by every run and search candidate that prunes that teacher on those images.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

from fsmc.atomic import read_json
from fsmc.cache import cache_key, cached_file
from fsmc.compress.pruning import importance_criterion
from fsmc.models.normalized import NormalizedClassifier
from fsmc.runtime import pick_device

# Ratios each layer is measured at; allocation interpolates between them (0: no damage, nothing saved).
MEASURED_RATIOS = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class LayerSensitivity:
    """One prunable group: damage and MACs saved at each measured ratio (ratio 0 is implied: 0 and 0)."""

    layer: str
    width: int  # output channels of the layer that names the group
    ratios: tuple[float, ...]
    damage: tuple[float, ...]
    macs_saved: tuple[int, ...]


def prunable_groups(model: NormalizedClassifier, example: torch.Tensor, importance: str = "l1") -> tuple[tp.pruner.BasePruner, list]:
    """torch-pruning's pruner for ``model`` (its ignored layers left out) and its prunable groups, in order."""
    pruner = tp.pruner.BasePruner(model, example[:1], importance=importance_criterion(importance), ignored_layers=model.pruning_ignored_layers())
    groups = list(pruner.DG.get_all_groups(ignored_layers=pruner.ignored_layers, root_module_types=pruner.root_module_types))
    return pruner, groups


def prunable_layers(model: NormalizedClassifier, example: torch.Tensor) -> list[str]:
    """Names of the layers that root torch-pruning's prunable groups (the model's ignored layers left out), in order."""
    names = {module: name for name, module in model.named_modules()}
    return [names[group[0][0].target.module] for group in prunable_groups(model, example)[1]]


def feature_damage(model: nn.Module, images: torch.Tensor, target: torch.Tensor, scale: torch.Tensor, batch_size: int = 256) -> float:
    """Pre-pool feature MSE of ``model`` to ``target`` on ``images``, over ``scale`` (the teacher's feature variance)."""
    total = 0.0
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            features = model.forward_features(images[start : start + batch_size])
            total += float(((features - target[start : start + batch_size]) ** 2).sum())
    return total / target.numel() / float(scale)


def _output_pixels(model: nn.Module, example: torch.Tensor) -> dict[nn.Module, int]:
    """Output height x width of every conv and BatchNorm layer on one image (what their MACs scale with)."""
    pixels: dict[nn.Module, int] = {}
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    hooks = [m.register_forward_hook(lambda m, i, o: pixels.__setitem__(m, o.shape[-1] * o.shape[-2])) for m in layers]
    try:
        with torch.no_grad():
            model(example[:1])
    finally:
        for hook in hooks:
            hook.remove()
    return pixels


def _removed_per_layer(group) -> dict[nn.Module, list[int | None]]:
    """For each conv / linear / norm layer of a pruning group: [output channels removed, input channels removed]."""
    removed: dict[nn.Module, list[int | None]] = {}
    for dep, idxs in group:
        module, handler = dep.target.module, getattr(dep.handler, "__name__", "")
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm)):
            counts = removed.setdefault(module, [None, None])
            counts[0 if handler == "prune_out_channels" else 1] = len(idxs) if handler in ("prune_out_channels", "prune_in_channels") else None
    return removed


def _macs_saved(removed: dict[nn.Module, list[int | None]], pixels: dict[nn.Module, int]) -> int:
    """Multiply-accumulates the removal saves in convolutions, linear and BatchNorm layers (as torch-pruning counts them)."""
    saved = 0
    for module, (out_removed, in_removed) in removed.items():
        k_out, k_in = out_removed or 0, in_removed or 0
        if isinstance(module, nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1] * pixels.get(module, 0)
            if module.groups == module.in_channels == module.out_channels:  # depthwise: a channel is one filter
                saved += max(k_out, k_in) * kernel
            else:
                before = module.out_channels * module.in_channels // module.groups
                saved += (before - (module.out_channels - k_out) * (module.in_channels - k_in) // module.groups) * kernel
        elif isinstance(module, nn.Linear):
            saved += module.out_features * module.in_features - (module.out_features - k_out) * (module.in_features - k_in)
        elif isinstance(module, nn.BatchNorm2d):  # torch-pruning's counter: a scale and a shift per element
            saved += 2 * k_out * pixels.get(module, 0)
    return saved


class _Silenced:
    """Within the block, the group's channels at ``idxs`` contribute nothing: their weights (and norm scale and shift)
    are zero, which gives the outputs of the model with those channels removed."""

    def __init__(self, group):
        self.group = group
        self.saved: list[tuple[torch.Tensor, torch.Tensor]] = []

    def _zero(self, tensor: torch.Tensor | None, idxs: list[int], dim: int) -> None:
        if tensor is None or tensor.dim() <= dim or tensor.shape[dim] <= max(idxs, default=-1):
            return
        self.saved.append((tensor, tensor.detach().clone()))
        tensor.data.index_fill_(dim, torch.tensor(idxs, dtype=torch.long), 0.0)

    def __enter__(self) -> None:
        for dep, idxs in self.group:
            module, handler = dep.target.module, getattr(dep.handler, "__name__", "")
            idxs = list(idxs)
            if handler == "prune_out_channels" and isinstance(module, (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm)):
                self._zero(module.weight, idxs, 0)
                self._zero(module.bias, idxs, 0)
            elif handler == "prune_in_channels" and isinstance(module, (nn.Conv2d, nn.Linear)):
                depthwise = isinstance(module, nn.Conv2d) and module.groups == module.in_channels == module.out_channels
                self._zero(module.weight, idxs, 0 if depthwise else 1)

    def __exit__(self, *exc) -> None:
        for tensor, original in reversed(self.saved):
            tensor.data.copy_(original)


def measure_sensitivity(
    teacher: NormalizedClassifier,
    images: torch.Tensor,
    importance: str = "l1",
    gradient_loss: Callable[[nn.Module], torch.Tensor] | None = None,
    ratios: tuple[float, ...] = MEASURED_RATIOS,
    progress: Callable[[int, int], None] | None = None,
) -> list[LayerSensitivity]:
    """Damage and MACs saved for every prunable group of ``teacher`` pruned alone at each of ``ratios``.

    A group is pruned by silencing (zeroing) the channels its criterion ranks lowest, which gives the pruned
    model's outputs without rebuilding it: one dependency trace for the whole table instead of one per entry
    (MobileNetV3-small: minutes to seconds). The channels and counts are torch-pruning's own.

    Args:
        teacher: the model to prune (left untouched).
        images: few-shot and OOD images in [0, 1] (no labels are read).
        importance: the channel criterion that picks which channels a ratio removes.
        gradient_loss: for the Taylor criteria, the loss whose gradients score the channels.
        ratios: ratios to measure, ascending, in (0, 1).
        progress: called with (done, total) after each entry.
    """
    model = copy.deepcopy(teacher).cpu().eval()
    example = images[:1]
    if gradient_loss is not None:
        model.zero_grad(set_to_none=True)
        gradient_loss(model).backward()
    pruner, groups = prunable_groups(model, example, importance)
    names = {module: name for name, module in model.named_modules()}
    pixels = _output_pixels(model, example)
    with torch.inference_mode():
        target = torch.cat([model.forward_features(images[s : s + 256]) for s in range(0, len(images), 256)])
    scale = target.var().clamp_min(1e-12)
    table, done = [], 0
    for group in groups:
        root, handler = group[0][0].target.module, group[0][0].handler
        width = pruner.DG.get_out_channels(root)
        scores = pruner.estimate_importance(group)
        scores = scores.view(-1, width).mean(0) if scores.numel() != width else scores  # grouped convs: averaged, as tp does
        order = torch.argsort(scores.cpu()).tolist()
        damage, saved = [], []
        for ratio in ratios:
            removed = width - int(width * (1 - ratio))  # torch-pruning's count for a ratio
            sub = pruner.DG.get_pruning_group(root, handler, sorted(order[:removed]))
            with _Silenced(sub):
                damage.append(round(feature_damage(model, images, target, scale), 8))
            saved.append(_macs_saved(_removed_per_layer(sub), pixels))
            done += 1
            if progress:
                progress(done, len(groups) * len(ratios))
        table.append(LayerSensitivity(names[root], width, tuple(ratios), tuple(damage), tuple(saved)))
    model.zero_grad(set_to_none=True)
    return table


def _tensor_digest(*tensors: torch.Tensor) -> str:
    digest = hashlib.sha256()
    for tensor in tensors:
        buffer = io.BytesIO()
        torch.save(tensor.detach().cpu().contiguous(), buffer)
        digest.update(buffer.getvalue())
    return digest.hexdigest()


def cached_sensitivity(
    teacher: NormalizedClassifier,
    images: torch.Tensor,
    importance: str = "l1",
    gradient_loss: Callable[[nn.Module], torch.Tensor] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[LayerSensitivity], bool]:
    """:func:`measure_sensitivity`, computed once per teacher weights, images, criterion, code and device.

    Returns:
        (the table, whether it came from the cache).
    """
    weights = _tensor_digest(*teacher.state_dict().values())
    key = cache_key(
        {"teacher": weights, "images": _tensor_digest(images), "importance": importance, "ratios": MEASURED_RATIOS, "device": pick_device().type},
        "fsmc.compress.sensitivity",
    )

    def produce(path) -> None:
        table = measure_sensitivity(teacher, images, importance, gradient_loss, progress=progress)
        path.write_text(json.dumps([layer.__dict__ for layer in table], indent=1) + "\n", encoding="utf-8")

    path, hit = cached_file("sensitivity", f"{key}.json", produce)
    rows = read_json(path)
    return [LayerSensitivity(r["layer"], r["width"], tuple(r["ratios"]), tuple(r["damage"]), tuple(r["macs_saved"])) for r in rows], hit
