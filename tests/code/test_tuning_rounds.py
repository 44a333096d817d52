"""Successive halving spends the full recovery where a pass is likeliest: cost met first, then the nearest miss."""

from __future__ import annotations

from fsmc.config import load_params
from fsmc.tuning.rounds import full_round_size, promising


def _row(name: str, speedup: float, top1_drop: float, worst_class_drop: float) -> dict:
    return {"name": name, "speedup": speedup, "top1_drop": top1_drop, "worst_class_drop": worst_class_drop, "macs_ratio": 0.5, "wall_seconds": 60.0}


def test_an_accurate_candidate_slower_than_the_teacher_is_not_preferred_to_a_near_miss():
    # The headline search's short round (issue 33): x2.0 asked at batch 1 within 1.5 / 2.5 points.
    params = load_params(None, ["target.speedup=2.0", "gate.max_top1_drop=0.015", "gate.max_worst_class_drop=0.025"])
    rows = [
        _row("channel+int8 (slower than the teacher)", 0.57, 0.0234, 0.040),
        _row("block-drop 60 %", 1.87, 0.0553, 0.063),
        _row("block-drop+int8 50 %", 1.51, 0.0241, 0.011),
        _row("block-drop 70 % (fast enough)", 2.55, 0.0787, 0.097),
    ]
    order = [r["name"] for r in promising(rows, params)]
    assert order[0] == "block-drop 70 % (fast enough)"  # the cost is final after the short round; accuracy grows
    assert order.index("block-drop+int8 50 %") < order.index("channel+int8 (slower than the teacher)")


def test_the_full_round_is_half_the_candidates_at_most_and_what_the_budget_fits():
    rows = [_row(f"c{i}", 1.0, 0.0, 0.0) for i in range(7)]
    assert full_round_size(rows, seconds_left=10_000, workers=2, full_over_short=4) == 4  # half of 7, rounded up
    assert full_round_size(rows, seconds_left=480, workers=2, full_over_short=4) == 4  # 960 s of workers / 240 s each
    assert full_round_size(rows, seconds_left=200, workers=1, full_over_short=4) == 0  # not even one fits
    assert full_round_size([], seconds_left=10_000, workers=2, full_over_short=4) == 0
