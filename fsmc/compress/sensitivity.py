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
from fsmc.compress.pruning import importance_criterion, model_cost, prune_channels
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


def prunable_layers(model: NormalizedClassifier, example: torch.Tensor) -> list[str]:
    """Names of the layers that root torch-pruning's prunable groups (the model's ignored layers left out), in order."""
    pruner = tp.pruner.BasePruner(model, example[:1], importance=importance_criterion("l1"), ignored_layers=model.pruning_ignored_layers())
    names = {module: name for name, module in model.named_modules()}
    groups = pruner.DG.get_all_groups(ignored_layers=pruner.ignored_layers, root_module_types=pruner.root_module_types)
    return [names[group[0][0].target.module] for group in groups]


def feature_damage(model: nn.Module, images: torch.Tensor, target: torch.Tensor, scale: torch.Tensor, batch_size: int = 256) -> float:
    """Pre-pool feature MSE of ``model`` to ``target`` on ``images``, over ``scale`` (the teacher's feature variance)."""
    total = 0.0
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            features = model.forward_features(images[start : start + batch_size])
            total += float(((features - target[start : start + batch_size]) ** 2).sum())
    return total / target.numel() / float(scale)


def measure_sensitivity(
    teacher: NormalizedClassifier,
    images: torch.Tensor,
    importance: str = "l1",
    gradient_loss: Callable[[nn.Module], torch.Tensor] | None = None,
    ratios: tuple[float, ...] = MEASURED_RATIOS,
    progress: Callable[[int, int], None] | None = None,
) -> list[LayerSensitivity]:
    """Damage and MACs saved for every prunable group of ``teacher`` pruned alone at each of ``ratios``.

    Args:
        teacher: the model to prune (left untouched).
        images: few-shot and OOD images in [0, 1] (no labels are read).
        importance: the channel criterion that picks which channels a ratio removes.
        gradient_loss: for the Taylor criteria, the loss whose gradients score the channels.
        ratios: ratios to measure, ascending, in (0, 1).
        progress: called with (done, total) after each pruned model.
    """
    teacher = teacher.cpu().eval()
    example = images[:1]
    with torch.inference_mode():
        target = torch.cat([teacher.forward_features(images[s : s + 256]) for s in range(0, len(images), 256)])
    scale = target.var().clamp_min(1e-12)
    total_macs = model_cost(teacher, example).macs
    layers = prunable_layers(teacher, example)
    widths = {name: m.out_channels if isinstance(m, nn.Conv2d) else m.out_features for name, m in teacher.named_modules() if name in layers}
    table, done = [], 0
    for layer in layers:
        damage, saved = [], []
        for ratio in ratios:
            # ratio 0 elsewhere: only this group loses channels.
            pruned, _ = prune_channels(teacher, example, 0.0, importance, gradient_loss=gradient_loss, layer_ratios={layer: ratio})
            damage.append(round(feature_damage(pruned, images, target, scale), 8))
            saved.append(total_macs - model_cost(pruned, example).macs)
            done += 1
            if progress:
                progress(done, len(layers) * len(ratios))
        table.append(LayerSensitivity(layer, widths[layer], tuple(ratios), tuple(damage), tuple(saved)))
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
