"""Per-layer pruning ratios that reach a MACs level with the least predicted damage.

Given each prunable group's damage and MACs saved at a few ratios (:mod:`fsmc.compress.sensitivity`,
interpolated linearly on a fine grid between them), the allocation minimises the summed damage subject
to the MACs removed: for a price ``lam`` per MAC, every layer independently takes the ratio minimising
``damage - lam * macs_saved``; the savings grow with ``lam``, so a bisection on ``lam`` finds the cheapest
allocation that removes enough (the Lagrangian form of NVIDIA ModelOpt FastNAS's threshold search, which
also weighs what each layer saves). Summed single-layer damage ignores interactions between layers; it
ranks, and recovery does the rest. Real pruning then corrects the small gap between predicted and counted
MACs (widths are whole channels, and rounding to SIMD multiples moves them further).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from fsmc.compress.pruning import rounded_ratio
from fsmc.compress.sensitivity import LayerSensitivity
from fsmc.errors import FsmcError

GRID_STEP = 0.0125  # ratios considered per layer, up to the largest measured one
MACS_TOLERANCE = 0.005  # of the teacher's MACs: how close the counted MACs must come to the level asked


def _curves(layer: LayerSensitivity) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    measured = np.array((0.0, *layer.ratios))
    grid = np.arange(0.0, measured[-1] + 1e-9, GRID_STEP)
    damage = np.interp(grid, measured, (0.0, *layer.damage))
    saved = np.interp(grid, measured, (0.0, *layer.macs_saved))
    return grid, damage, saved


def _choose(curves, price: float) -> tuple[list[float], float]:
    ratios, saved_total = [], 0.0
    for grid, damage, saved in curves:
        best = int(np.argmin(damage - price * saved))  # ties: the lowest ratio (argmin takes the first)
        ratios.append(float(grid[best]))
        saved_total += float(saved[best])
    return ratios, saved_total


def allocate_ratios(table: Sequence[LayerSensitivity], macs_to_remove: float, round_to: int = 0) -> dict[str, float]:
    """Per-layer ratios predicted to remove at least ``macs_to_remove`` MACs with the least summed damage.

    Raises:
        FsmcError: when pruning every layer at its largest measured ratio removes less than asked.
    """
    curves = [_curves(layer) for layer in table]
    most = sum(float(saved[-1]) for _, _, saved in curves)
    if macs_to_remove > most:
        raise FsmcError(
            f"removing {macs_to_remove:,.0f} MACs asks more than pruning every prunable layer at "
            f"{max(layer.ratios[-1] for layer in table):.0%} of its channels removes ({most:,.0f}); ask for a MACs "
            "level nearer the teacher's."
        )
    low, high = 0.0, 1.0
    while _choose(curves, high)[1] < macs_to_remove:
        high *= 4
    for _ in range(60):  # bisection on the price per MAC; 60 halvings resolve it far below one channel
        middle = (low + high) / 2
        if _choose(curves, middle)[1] >= macs_to_remove:
            high = middle
        else:
            low = middle
    ratios, _ = _choose(curves, high)
    return {
        layer.layer: round(rounded_ratio(layer.width, ratio, round_to) if round_to > 1 and ratio > 0 else ratio, 6)
        for layer, ratio in zip(table, ratios)
    }


def allocation_for_macs(
    table: Sequence[LayerSensitivity],
    teacher_macs: int,
    keep_fraction: float,
    count_macs: Callable[[dict[str, float]], int],
    round_to: int = 0,
    attempts: int = 5,
) -> tuple[dict[str, float], int]:
    """Ratios whose pruned model keeps ``keep_fraction`` of ``teacher_macs`` (within :data:`MACS_TOLERANCE`, or
    the closest of ``attempts``), with the MACs ``count_macs(ratios)`` counts on the really pruned model.

    Predicted and counted savings differ a little (whole channels); each attempt rescales the amount asked by
    the ratio of the two.
    """
    wanted = teacher_macs * (1 - keep_fraction)
    asked = wanted
    best: tuple[float, dict[str, float], int] | None = None
    for _ in range(attempts):
        ratios = allocate_ratios(table, min(asked, sum(layer.macs_saved[-1] for layer in table)), round_to)
        macs = count_macs(ratios)
        error = abs((teacher_macs - macs) - wanted) / teacher_macs
        if best is None or error < best[0]:
            best = (error, ratios, macs)
        if error <= MACS_TOLERANCE:
            break
        removed = teacher_macs - macs
        asked = asked * wanted / removed if removed > 0 else asked * 2
    return best[1], best[2]
