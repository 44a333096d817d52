"""Latency as a user reads it: median and p90 of timed repeats, the callers timed alternately in one process."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass
from typing import TypeVar

import numpy as np

Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True)
class Latency:
    """One forward pass of ``batch`` images: median and 90th percentile over ``repeats`` timed calls."""

    median_ms: float
    p90_ms: float
    repeats: int
    batch: int

    def to_dict(self) -> dict:
        """Plain values for JSON."""
        return asdict(self)


def time_alternately(calls: dict[Key, Callable[[], object]], batch: int, budget_s: float = 2.0, block_s: float = 0.05) -> dict[Key, Latency]:
    """Time each of ``calls`` (no-argument callables running one batch) in blocks, block after block in turn.

    Alternating means a burst of other load on the machine hits every caller alike, so their ratios hold
    even when the absolute times wander. Alternating in blocks of about ``block_s`` seconds, not call by
    call, and dropping each block's first call, keeps one runtime's idle worker threads (OpenMP spins for a
    while after each parallel region) from taxing the next runtime's first calls: on 2 cores that tax tripled
    OpenVINO's p90 at batch 1. Each caller is warmed up first (runtimes compile and allocate on their first
    calls); the rounds fill about ``budget_s`` seconds, with at least 5 timed calls per caller.
    """
    per_call = {}
    for name, call in calls.items():
        for _ in range(2):
            call()
        started = time.perf_counter()
        call()
        per_call[name] = max(time.perf_counter() - started, 1e-6)
    block = {name: max(1, int(block_s / seconds)) for name, seconds in per_call.items()}
    per_round = sum(per_call[name] * (block[name] + 1) for name in calls)
    rounds = max(1, int(budget_s / per_round), -(-5 // min(block.values())))
    samples: dict[Key, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            call()  # the block's first call pays for the previous caller's threads; not counted
            for _ in range(block[name]):
                started = time.perf_counter()
                call()
                samples[name].append(1000 * (time.perf_counter() - started))
    return {
        name: Latency(round(float(np.median(ms)), 4), round(float(np.percentile(ms, 90)), 4), len(ms), batch)
        for name, ms in samples.items()
    }


def timed_batch(images: np.ndarray, size: int) -> np.ndarray:
    """``size`` images from ``images``, repeated if there are fewer: the timed batch is the size asked for."""
    return np.ascontiguousarray(images[np.arange(size) % len(images)], dtype=np.float32)
