"""Successive halving under a wall-clock budget: which candidates earn full recovery after the short round."""

from __future__ import annotations

import math

from fsmc.config import Params
from fsmc.tuning.selection import judge, shortfall


def promising(rows: list[dict], params: Params) -> list[dict]:
    """Short-round rows ordered by promise: those meeting the speed / MACs target first, then by summed relative miss.

    The cost side (speed-up, MACs) is final after the short round, the accuracy side only improves with the full
    recovery: so a candidate that meets the cost comes first, and the rest are ranked by how far they are from
    every limit together (:func:`~fsmc.tuning.selection.shortfall`), not by accuracy alone, which would spend a
    full recovery on an accurate candidate slower than the teacher (issue 33: channel+int8 at x0.57).
    """
    def cost_met(row: dict) -> bool:
        misses = judge(row, params).misses
        return misses.get("speedup", 0.0) == 0 and misses.get("macs", 0.0) == 0

    return sorted(rows, key=lambda r: (not cost_met(r), shortfall(judge(r, params), params), -r["speedup"]))


def full_round_size(rows: list[dict], seconds_left: float, workers: int, full_over_short: float) -> int:
    """How many of ``rows`` get full recovery: half of them (at least one), as many as the budget fits.

    A full recovery is estimated at the short round's mean wall time per candidate times the ratio of steps
    (``full_over_short``); ``workers`` run side by side.
    """
    if not rows:
        return 0
    per_candidate = full_over_short * sum(r["wall_seconds"] for r in rows) / len(rows)
    fits = int(seconds_left * workers // max(per_candidate, 1e-9))
    return max(0, min(math.ceil(len(rows) / 2), fits))
