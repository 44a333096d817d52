"""Benchmark presets expand into the grids the papers describe; bad slices are refused in one paragraph."""

from __future__ import annotations

import pytest

from fsmc.benchmark.grid import expand
from fsmc.config.presets import PRESETS, get_preset
from fsmc.errors import FsmcError
from tests.conftest import REPO

PARAMS = REPO / "params.yaml"


def test_paper_preset_is_the_papers_grid():
    grid = expand(get_preset("paper-cifar10"), PARAMS)
    assert len(grid.cells) == 3 * 5 * 2 * 3 and not grid.skipped  # budgets x methods x {base, +oe} x seeds
    params = {c.params.data.teacher for c in grid.cells}, {c.params.compress.ratio for c in grid.cells}
    assert params == ({"resnet56-jpeg"}, {0.5})
    budgets = {(c.params.sample_few_shot.k_max, c.params.sample_few_shot.imbalance_ratio) for c in grid.cells}
    assert budgets == {(10, 1.0), (50, 10.0), (50, 50.0)}
    assert len({c.cell_id for c in grid.cells}) == len(grid.cells)


def test_smoke_preset_runs_on_the_embedded_default_with_two_methods_two_seeds():
    grid = expand(get_preset("smoke"), PARAMS)
    assert len(grid.cells) == 8
    assert {c.params.data.dataset for c in grid.cells} == {"digits"}
    assert {(c.params.recover.method, c.params.recover.oe) for c in grid.cells} == {("kd", False), ("kd", True), ("mir", False), ("mir", True)}
    assert {c.params.recover.seed for c in grid.cells} == {0, 1} and {c.params.sample_few_shot.seed for c in grid.cells} == {0, 1}


def test_robustness_preset_leaves_out_what_cannot_exist_and_says_why():
    grid = expand(get_preset("robustness-cifar10"), PARAMS)
    assert len(grid.cells) == 2 * 3 * 4 - 4  # ResNet-20 has no smaller zoo student to distil into
    assert all(labels["teacher"] == "resnet20-jpeg" and labels["scheme"] == "distill" for labels, _ in grid.skipped)
    assert "not a smaller architecture" in grid.skipped[0][1]
    assert {c.params.sample_few_shot.imbalance_ratio for c in grid.cells} == {1.0, 10.0, 50.0, 100.0}


def test_only_slices_the_grid_and_set_reaches_every_cell():
    grid = expand(get_preset("paper-cifar10"), PARAMS, ["method=mir", "budget=K=10", "budget=exp K_max=50 rho=10"], ["recover.steps=7"])
    assert len(grid.cells) == 2 * 2 * 3
    assert {c.params.recover.method for c in grid.cells} == {"mir"} and {c.params.recover.steps for c in grid.cells} == {7}


@pytest.mark.parametrize(
    ("name", "only", "message"),
    [
        ("paper", [], "Unknown benchmark preset 'paper'. Valid presets: smoke"),
        ("smoke", ["methd=kd"], "axes of smoke are: scheme, budget, method, oe, seed"),
        ("smoke", ["method=fskd"], "valid: kd, mir"),
        ("robustness-cifar10", ["teacher=resnet20-jpeg", "scheme=distill"], "has zero cells to run"),
    ],
)
def test_bad_presets_and_slices_are_named(name, only, message):
    with pytest.raises(FsmcError, match=message.replace("(", r"\(").replace(")", r"\)")):
        expand(get_preset(name), PARAMS, only)


def test_every_preset_has_a_headline_cell_in_its_grid():
    for preset in PRESETS.values():
        labels = {axis: {level.label for level in levels} for axis, levels in preset.axes}
        assert all(value in labels[axis] for axis, value in preset.headline), preset.name
