"""Successive halving under a wall-clock budget: which candidates earn full recovery after the short round, and which
a longer one after the full round."""

from __future__ import annotations

import math

from fsmc.config import Params
from fsmc.tuning.selection import accuracy_shortfall, judge, shortfall


def _cost_met(row: dict, params: Params) -> bool:
    misses = judge(row, params).misses
    return misses.get("speedup", 0.0) == 0 and misses.get("macs", 0.0) == 0


def promising(rows: list[dict], params: Params) -> list[dict]:
    """Short-round rows ordered by promise: those meeting the speed / MACs target first, then by summed relative miss.

    The cost side (speed-up, MACs) is final after the short round, the accuracy side only improves with the full
    recovery: so a candidate that meets the cost comes first, and the rest are ranked by how far they are from
    every limit together (:func:`~fsmc.tuning.selection.shortfall`), not by accuracy alone, which would spend a
    full recovery on an accurate candidate slower than the teacher (issue 33: channel+int8 at x0.57).
    """
    return sorted(rows, key=lambda r: (not _cost_met(r, params), shortfall(judge(r, params), params), -r["speedup"]))


def full_round_entrants(rows: list[dict], params: Params, size: int, workers: int) -> list[dict]:
    """Which short-round rows get the full recovery: at most ``size``, the cost-met ones first (:func:`promising`).

    While some row meets the cost, the rows that miss it can only be the fallback the miss message names (the
    fastest student within the accuracy limits, at a lower speed-up): they fill the slots left in the cost-met
    rows' last wave, fastest first, and get no wave of their own. Issue 33's headline search spent 6 of its 9
    full-round minutes on two such rows (channel x0.57 at x1.01: 375 s) and had no time left for the long round.
    """
    ordered = promising(rows, params)
    met = [r for r in ordered if _cost_met(r, params)]
    if not met:
        return ordered[:size]
    slots = max(len(met[:size]), min(size, math.ceil(len(met) / workers) * workers))
    fallback = sorted((r for r in ordered if not _cost_met(r, params)), key=lambda r: -r["speedup"])
    return (met + fallback)[:slots]


# How recovery's wall time shrinks with the threads it is given: time ~ 1 / threads ** THREAD_SCALING. Measured on the
# 2-core machine in the search's own Dask worker: block-drop 60 %'s long round, 8x the steps of its 142 s full round on
# 1 thread, took 724 s on 2 (x1.57 = 2 ** 0.65); in the main process the same pipeline ran x1.75 faster on 2 threads.
THREAD_SCALING = 0.65


def threads_each(candidates: int, workers: int) -> int:
    """Threads per candidate, as a multiple of the workers' own: a round with fewer candidates than workers shares the idle workers' cores."""
    return max(1, workers // max(candidates, 1))


def round_size(rows: list[dict], seconds_left: float, workers: int, steps_ratio: float) -> int:
    """How many of ``rows`` get the next, longer recovery: half of them (at least one), as many as the budget fits.

    A recovery is estimated at ``rows``' mean round seconds per candidate (as computed, not as restored from the stage
    cache: ``round_seconds``) times the ratio of steps (``steps_ratio``:
    full over short, long over full); ``workers`` run side by side, one candidate each, in waves that must all end within
    ``seconds_left`` (a candidate cannot be split across workers: the headline search's long round, 635 s on one
    worker with 480 s left, ran 5 minutes over its budget when the workers' seconds were pooled). A round of fewer
    candidates than workers gives each the idle workers' threads too (:func:`threads_each`), and runs faster by
    :data:`THREAD_SCALING`.
    """
    if not rows:
        return 0
    per_candidate = steps_ratio * sum(r["round_seconds"] for r in rows) / len(rows)
    for size in range(math.ceil(len(rows) / 2), 0, -1):
        waves = math.ceil(size / workers)
        if waves * per_candidate / threads_each(size, workers) ** THREAD_SCALING <= seconds_left:
            return size
    return 0


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
