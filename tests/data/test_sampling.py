"""The few-shot sampler: profiles, ranks from a seeded permutation, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from fsmc.data.sampling import minority_classes, profile_counts, sample_few_shot
from fsmc.errors import FsmcError

LABELS = np.repeat(np.arange(10), 100)


def test_exp_profile_matches_the_ldam_long_tail():
    # notes/papers.md §1.3: K_max = 50, rho = 10.
    assert profile_counts(10, 50, 10, "exp") == [50, 38, 29, 23, 17, 13, 10, 8, 6, 5]
    # floor(20 * 10**-1) must be 2, not 1 (float error guarded).
    assert profile_counts(10, 20, 10, "exp")[-1] == 2


def test_step_profile_gives_half_k_max_half_k_max_over_rho():
    assert profile_counts(10, 20, 4, "step") == [20] * 5 + [5] * 5


def test_ratio_above_k_max_is_refused_not_clamped():
    with pytest.raises(FsmcError, match="at least one sample"):
        profile_counts(10, 5, 6, "exp")


def test_draw_has_the_profile_counts_per_rank():
    draw = sample_few_shot(LABELS, 10, 50, 10, "exp", seed=3)
    expected = profile_counts(10, 50, 10, "exp")
    for cls, count in draw.counts.items():
        assert count == expected[draw.ranks[cls]]
        assert np.sum(LABELS[draw.indices] == cls) == count
    assert len(set(draw.indices.tolist())) == len(draw.indices) == sum(expected)


def test_same_seed_same_draw_other_seed_other_ranks():
    first = sample_few_shot(LABELS, 10, 20, 10, "exp", seed=0)
    again = sample_few_shot(LABELS, 10, 20, 10, "exp", seed=0)
    other = sample_few_shot(LABELS, 10, 20, 10, "exp", seed=1)
    assert np.array_equal(first.indices, again.indices) and first.ranks == again.ranks
    assert first.ranks != other.ranks


def test_class_without_enough_images_is_refused():
    labels = np.array([0] * 3 + [1] * 50)
    with pytest.raises(FsmcError, match="Class 0 has only 3"):
        sample_few_shot(labels, 2, 20, 1, "exp", seed=0)


def test_minority_classes_are_the_fewest_shots():
    counts = {0: 20, 1: 2, 2: 5, 3: 2}
    ranks = {0: 0, 1: 3, 2: 1, 3: 2}
    assert minority_classes(counts, ranks, 2) == [1, 3]
