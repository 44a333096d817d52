"""The share of its MACs ratio a student's speed-up reaches, and the notice when width does not pay (issue 32, goal 2)."""

from __future__ import annotations

import pytest

from fsmc.shipping.speedups import macs_pace_notices, with_macs_pace


def _latency(**speedups: float) -> dict:
    return {"label": "openvino bf16, 2 threads", "batches": {batch: {"compression_speedup": s} for batch, s in speedups.items()}}


def test_the_pace_is_the_speedup_over_the_macs_ratio_at_every_batch():
    # The headline channel student on an AMD EPYC: MACs x0.504, x1.29 at batch 1, x1.48 at batch 64.
    latency = with_macs_pace(_latency(**{"1": 1.29, "64": 1.48}), teacher_macs=126_550_666, student_macs=63_744_650)
    assert latency["macs_ratio"] == pytest.approx(1.985, abs=1e-3)
    assert latency["batches"]["1"]["macs_pace"] == pytest.approx(0.65, abs=0.01)
    assert latency["batches"]["64"]["macs_pace"] == pytest.approx(0.745, abs=0.01)


def test_a_width_pruned_student_below_its_macs_is_told_that_depth_pays_and_one_at_its_macs_hears_nothing():
    width = with_macs_pace(_latency(**{"1": 1.29, "64": 1.48}), 126_550_666, 63_744_650)
    notices = macs_pace_notices(width, "channel")
    assert len(notices) == 2 and "at batch 1" in notices[0] and "0.65 of it" in notices[0]
    assert all("compress.scheme=block-drop" in line for line in notices)
    # Block-drop 50 % on the same CPU: x1.79 and x1.85 for MACs x0.548, as fast as its MACs say.
    assert macs_pace_notices(with_macs_pace(_latency(**{"1": 1.79, "64": 1.85}), 1000, 548), "block-drop") == []
    # int8 keeps the float MACs: any speed-up is above its pace; a slow int8 student is told, without the width advice.
    slow_int8 = macs_pace_notices(with_macs_pace(_latency(**{"1": 0.07}), 1000, 1000), "int8-ptq")
    assert len(slow_int8) == 1 and "block-drop" not in slow_int8[0] and "int8 does not pay" in slow_int8[0] and "fsmc tune" in slow_int8[0]
