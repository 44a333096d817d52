"""Per-layer pruning ratios that reach a MACs level with the least predicted damage.

Given each prunable group's damage and MACs saved at a few ratios (:mod:`fsmc.compress.sensitivity`,
interpolated linearly on a fine grid between them), the allocation minimises the summed damage subject
to the MACs removed, greedily: the layer whose next small step (:data:`GRID_STEP`) costs the least damage per
MAC saved takes it, until enough is removed. (A Lagrangian search on a price per MAC was tried first: it lands
only on measured ratios, so on the digits CNN a level of x0.57 came out at x0.51.) Summed single-layer damage
ignores interactions between layers; it ranks, and recovery does the rest. Real pruning then corrects the
small gap between predicted and counted MACs (widths are whole channels, and SIMD rounding moves them further).
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


def allocate_ratios(table: Sequence[LayerSensitivity], macs_to_remove: float, round_to: int = 0) -> dict[str, float]:
    """Per-layer ratios predicted to remove at least ``macs_to_remove`` MACs with the least summed damage.

    Greedy by damage per MAC saved: every layer starts whole, and the layer whose next grid step adds the least
    damage per MAC it saves takes that step, until enough is removed.

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
    steps = [0] * len(curves)
    removed = 0.0

    def price(index: int) -> float:
        grid, damage, saved = curves[index]
        at = steps[index]
        if at + 1 >= len(grid):
            return np.inf
        gain = saved[at + 1] - saved[at]
        return (damage[at + 1] - damage[at]) / gain if gain > 0 else np.inf

    while removed < macs_to_remove:
        cheapest = min(range(len(curves)), key=lambda i: (price(i), i))
        if not np.isfinite(price(cheapest)):
            break
        grid, _, saved = curves[cheapest]
        removed += float(saved[steps[cheapest] + 1] - saved[steps[cheapest]])
        steps[cheapest] += 1
    ratios = [float(curves[i][0][steps[i]]) for i in range(len(curves))]
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
