"""Successive halving spends the full recovery where a pass is likeliest: cost met first, then the nearest miss."""

from __future__ import annotations

from fsmc.config import load_params
from fsmc.tuning.rounds import full_round_entrants, long_round_entrants, promising, round_size, threads_each
from fsmc.tuning.selection import choose, miss_message


def _row(name: str, speedup: float, top1_drop: float, worst_class_drop: float) -> dict:
    return {"name": name, "speedup": speedup, "top1_drop": top1_drop, "worst_class_drop": worst_class_drop, "macs_ratio": 0.5, "round_seconds": 60.0}


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


def test_rows_that_miss_the_speed_only_fill_the_last_wave_of_those_that_meet_it_fastest_first():
    # The headline search's short round (issue 33, fourth session): x2.0 asked at batch 1 within 1.5 / 2.5 points.
    params = load_params(None, ["target.speedup=2.0", "gate.max_top1_drop=0.015", "gate.max_worst_class_drop=0.025"])
    rows = [
        _row("channel x0.57 (accurate, x1.01)", 1.01, 0.0083, 0.013),
        _row("block-drop 50 %", 1.54, 0.023, 0.024),
        _row("channel x0.30", 1.39, 0.059, 0.108),
        _row("block-drop 60 %", 2.05, 0.0553, 0.063),
        _row("block-drop 70 %", 2.49, 0.0787, 0.097),
        _row("distill resnet20", 2.81, 0.1064, 0.124),
    ]
    names = [r["name"] for r in full_round_entrants(rows, params, size=5, workers=2)]
    assert names[:3] == ["block-drop 60 %", "block-drop 70 %", "distill resnet20"]  # every row that meets x2.0
    assert names[3:] == ["block-drop 50 %"]  # one fallback fills the second wave: the fastest, not the most accurate
    assert len(full_round_entrants(rows, params, size=2, workers=2)) == 2  # the budget's size still caps the round
    # With no row at x2.0 the round is the summed-miss order of promising(), as many as the size allows.
    slow = [r for r in rows if r["speedup"] < 2]
    assert full_round_entrants(slow, params, size=2, workers=2) == promising(slow, params)[:2]


def test_the_full_round_is_half_the_candidates_at_most_and_what_the_budget_fits():
    rows = [_row(f"c{i}", 1.0, 0.0, 0.0) for i in range(7)]
    assert round_size(rows, seconds_left=10_000, workers=2, steps_ratio=4) == 4  # half of 7, rounded up
    assert round_size(rows, seconds_left=480, workers=2, steps_ratio=4) == 4  # 960 s of workers / 240 s each
    assert round_size(rows, seconds_left=200, workers=1, steps_ratio=4) == 0  # not even one fits
    assert round_size(rows, seconds_left=400, workers=2, steps_ratio=4) == 2  # one wave of two, not 800 s pooled
    # A lone candidate runs on one worker with both workers' threads: 240 s / 2 ** 0.65 = 153 s, never split across workers.
    assert threads_each(1, workers=2) == 2 and threads_each(3, workers=2) == 1
    assert round_size(rows[:1], seconds_left=200, workers=2, steps_ratio=4) == 1
    assert round_size(rows[:1], seconds_left=130, workers=2, steps_ratio=4) == 0
    assert round_size([], seconds_left=10_000, workers=2, steps_ratio=4) == 0


def test_the_long_round_goes_to_the_nearest_accuracy_miss_faster_than_anything_within_the_limits():
    # The headline search's full round (issue 33, third session): nothing at x2.0 within 1.5 / 2.5 points.
    params = load_params(None, ["target.speedup=2.0", "gate.max_top1_drop=0.015", "gate.max_worst_class_drop=0.025"])
    rows = [
        _row("distill resnet20", 2.89, 0.0632, 0.078),
        _row("block-drop 70 %", 2.55, 0.0394, 0.027),
        _row("block-drop 60 %", 1.90, 0.0233, 0.021),
        _row("block-drop 50 % (within the limits)", 1.58, 0.0111, -0.011),
        _row("channel x0.43 (slower than block-drop 50 %)", 1.16, 0.0176, 0.019),
    ]
    order = [r["name"] for r in long_round_entrants(rows, params)]
    # Only accuracy can still improve: rows within the limits gain nothing, slower misses cannot win.
    assert order == ["block-drop 60 %", "block-drop 70 %", "distill resnet20"]
    assert long_round_entrants([r for r in rows if "50 %" in r["name"]], params) == []
    # With no row within the limits, every accuracy miss may enter; a MACs target also rules out the rows above it.
    macs = load_params(None, ["target.macs=0.4", "gate.max_top1_drop=0.015", "gate.max_worst_class_drop=0.025"])
    assert [r["name"] for r in long_round_entrants([{**rows[2], "macs_ratio": 0.43}, {**rows[1], "macs_ratio": 0.32}], macs)] == ["block-drop 70 %"]


def test_when_nothing_passes_the_closest_of_equal_misses_is_the_more_accurate_round():
    # The user's MobileNetV3-small search (sixth session): x1.5 asked, channel x0.57 at x1.22 in every round.
    params = load_params(None, ["target.speedup=1.5", "gate.max_top1_drop=0.05", "gate.max_worst_class_drop=0.10"])
    rows = [_row("channel x0.57 (short)", 1.22, 0.039, -0.03), _row("channel x0.57 (full)", 1.22, 0.025, -0.01), _row("channel x0.7", 1.17, 0.010, -0.01)]
    chosen, passed = choose(rows, params)
    assert not passed and chosen["name"] == "channel x0.57 (full)"
    assert "channel x0.57 (full), reached x1.22 (top-1 drop 2.50" in miss_message(chosen, passed, rows, params)


def test_of_passing_candidates_tied_on_speed_the_more_accurate_is_registered():
    # The x2.0 search on an AMD EPYC (sixth session): two rows passed a hundredth of a speed-up apart.
    params = load_params(None, ["target.speedup=2.0", "gate.max_top1_drop=0.015", "gate.max_worst_class_drop=0.025"])
    rows = [
        _row("block-drop 60 % (long)", 2.28, 0.0148, -0.010),
        _row("block-drop+int8 50 % (full)", 2.27, 0.0111, -0.008),
        _row("block-drop 70 % (too inaccurate)", 2.89, 0.0252, 0.008),
    ]
    chosen, passed = choose(rows, params)
    assert passed and chosen["name"] == "block-drop+int8 50 % (full)"
    # A real speed difference still wins over accuracy: the faster row stays the choice beyond the timing noise.
    rows[0] = _row("block-drop 60 % (long, clearly faster)", 2.45, 0.0148, -0.010)
    assert choose(rows, params)[0]["name"] == "block-drop 60 % (long, clearly faster)"
