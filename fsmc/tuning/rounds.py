"""Successive halving under a wall-clock budget: which candidates earn full recovery after the short round, and which
a longer one after the full round."""

from __future__ import annotations

import math

from fsmc.config import Params
from fsmc.tuning.selection import accuracy_shortfall, judge, shortfall


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


def round_size(rows: list[dict], seconds_left: float, workers: int, steps_ratio: float) -> int:
    """How many of ``rows`` get the next, longer recovery: half of them (at least one), as many as the budget fits.

    A recovery is estimated at ``rows``' mean wall time per candidate times the ratio of steps (``steps_ratio``:
    full over short, long over full); ``workers`` run side by side, one candidate each, in waves that must all end within
    ``seconds_left`` (a candidate cannot be split across workers: the headline search's long round, 635 s on one
    worker with 480 s left, ran 5 minutes over its budget when the workers' seconds were pooled).
    """
    if not rows:
        return 0
    per_candidate = steps_ratio * sum(r["wall_seconds"] for r in rows) / len(rows)
    fits = int(seconds_left // max(per_candidate, 1e-9)) * workers
    return max(0, min(math.ceil(len(rows) / 2), fits))


def long_round_entrants(full_rows: list[dict], params: Params) -> list[dict]:
    """Full-round rows a longer recovery could still turn into the answer, the nearest accuracy miss first.

    More recovery only raises accuracy, so a row qualifies when accuracy is all it misses that matters: it is
    outside an accuracy limit, it is faster than every row already within both (a longer recovery can then make it
    the fastest within the limits, or the closest: issue 33's block-drop 60 % at x1.90, 0.83 points over the top-1
    limit after 400 steps, where block-drop 50 % within the limits reached x1.58), and it meets a MACs target if one
    is set. Ranked by the accuracy misses alone: the cost is final.
    """
    accurate = [r["speedup"] for r in full_rows if accuracy_shortfall(r, params) == 0]
    fastest_accurate = max(accurate, default=0.0)
    entrants = [
        r for r in full_rows
        if accuracy_shortfall(r, params) > 0 and r["speedup"] > fastest_accurate and judge(r, params).misses.get("macs", 0.0) == 0
    ]  # fmt: skip
    return sorted(entrants, key=lambda r: (accuracy_shortfall(r, params), -r["speedup"]))
