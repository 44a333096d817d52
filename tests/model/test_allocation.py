"""Per-layer allocation by measured damage: the damage table is the pruned model's, and the MACs level is met."""

from __future__ import annotations

import pytest
import torch

from fsmc.compress.allocation import MACS_TOLERANCE, allocation_for_macs
from fsmc.compress.pruning import model_cost, prune_channels
from fsmc.compress.sensitivity import feature_damage, measure_sensitivity
from fsmc.models.normalized import NormalizedClassifier
from fsmc.models.torchvision_net import TorchvisionClassifier
from tests.model.test_schemes import _resnet


def _mobilenet() -> NormalizedClassifier:
    torch.manual_seed(0)
    return NormalizedClassifier(TorchvisionClassifier("mobilenet_v3_small", 10), [0.5] * 3, [0.25] * 3).eval()


def _counter(model: NormalizedClassifier, example: torch.Tensor):
    return lambda ratios: model_cost(prune_channels(model, example, 0.0, layer_ratios=ratios)[0], example).macs


def test_the_damage_table_is_what_really_pruning_each_layer_gives():
    """Silencing channels stands in for removing them: the same damage and the same MACs as the pruned model."""
    teacher, images = _resnet(20), torch.rand(16, 3, 32, 32)
    table = measure_sensitivity(teacher, images)
    total = model_cost(teacher, images[:1]).macs
    with torch.no_grad():
        target = teacher.forward_features(images)
    assert len(table) == 9  # ResNet-20: the inner conv of each of its 9 blocks
    for row in table[::4]:
        for ratio, damage, saved in zip(row.ratios, row.damage, row.macs_saved, strict=True):
            pruned, _ = prune_channels(teacher, images[:1], 0.0, layer_ratios={row.layer: ratio})
            assert saved == total - model_cost(pruned, images[:1]).macs
            assert damage == pytest.approx(feature_damage(pruned, images, target, target.var()), rel=1e-4, abs=1e-7)
        assert 0 < row.damage[0] < row.damage[-1]  # more channels gone, more damage


@pytest.mark.parametrize(("build", "size"), [(lambda: _resnet(20), 32), (_mobilenet, 64)], ids=["resnet20", "mobilenet_v3_small"])
def test_the_allocation_meets_its_macs_level(build, size):
    teacher, images = build(), torch.rand(8, 3, size, size)
    table = measure_sensitivity(teacher, images)
    total = model_cost(teacher, images[:1]).macs
    for keep in (0.7, 0.5):
        ratios, macs = allocation_for_macs(table, total, keep, _counter(teacher, images[:1]))
        assert abs(macs / total - keep) <= MACS_TOLERANCE, (keep, macs / total)
        assert macs == _counter(teacher, images[:1])(ratios)  # the MACs reported are the pruned model's
        assert len(set(ratios.values())) > 1  # not uniform: layers differ in damage per MAC


def test_rounded_widths_stay_simd_friendly_and_near_the_level():
    teacher, images = _resnet(20), torch.rand(8, 3, 32, 32)
    table = measure_sensitivity(teacher, images)
    total = model_cost(teacher, images[:1]).macs
    ratios, macs = allocation_for_macs(table, total, 0.6, _counter(teacher, images[:1]), round_to=8)
    _, kept = prune_channels(teacher, images[:1], 0.0, layer_ratios=ratios)
    assert all(len(channels) % 8 == 0 for channels in kept.outputs.values())
    # One 8-channel step of a 64-wide layer pair moves ~4 % of ResNet-20's MACs: that is the rounding.
    assert abs(macs / total - 0.6) < 0.05


def test_a_layer_made_redundant_by_hand_is_the_cheapest_and_goes_first():
    teacher, images = _resnet(20), torch.rand(16, 3, 32, 32)
    with torch.no_grad():  # block layer2.1 now adds nothing: its inner channels carry no information onward
        teacher.net.layer2[1].conv2.weight.zero_()
        teacher.net.layer2[1].bn2.bias.zero_()
    table = {row.layer: row for row in measure_sensitivity(teacher, images)}
    redundant = table.pop("net.layer2.1.conv1")
    assert max(redundant.damage) < 1e-6
    assert min(row.damage[0] for row in table.values()) > 100 * max(redundant.damage, default=0) + 1e-6
    total = model_cost(teacher, images[:1]).macs
    ratios, _ = allocation_for_macs(list(table.values()) + [redundant], total, 0.95, _counter(teacher, images[:1]))
    assert ratios.pop("net.layer2.1.conv1") > 0
    assert set(ratios.values()) == {0.0}  # the few MACs asked come from the redundant layer alone
