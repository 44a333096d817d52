"""OOD curation: no duplicates, nothing equal to an in-distribution image, honest budget."""

from __future__ import annotations

import pytest

from fsmc.data.embedded import load_digits_dataset, load_photo_patches
from fsmc.data.ood import curate_ood, ood_budget
from fsmc.errors import FsmcError


def test_duplicates_and_id_images_are_removed():
    pool = ["a", "b", "a", "c", "id1", "d", "b"]
    draw = curate_ood(pool, {"id1", "zz"}, size=4, seed=0)
    chosen = [pool[i] for i in draw.indices]
    assert sorted(chosen) == ["a", "b", "c", "d"]
    assert draw.duplicates_removed == 2 and draw.id_overlap_removed == 1


def test_pool_smaller_than_budget_is_refused():
    with pytest.raises(FsmcError, match="only 2 usable"):
        curate_ood(["a", "b", "a"], set(), size=3, seed=0)


def test_budget_as_multiple_of_the_class_deficit():
    counts = {0: 20, 1: 10, 2: 5}
    assert ood_budget("deficit", 2.0, 20, counts) == 2 * (0 + 10 + 15)
    assert ood_budget("absolute", 123, 20, counts) == 123


def test_budget_all_takes_every_usable_image_and_nothing_else():
    from fsmc.config import parse_budget

    mode, amount = parse_budget("all")
    assert ood_budget(mode, amount, 20, {0: 20, 1: 5}) is None
    pool = ["a", "b", "a", "id1", "c"]
    draw = curate_ood(pool, {"id1"}, size=None, seed=0)
    assert [pool[i] for i in draw.indices] == ["a", "b", "c"]
    assert draw.duplicates_removed == 1 and draw.id_overlap_removed == 1


def test_embedded_ood_pool_looks_like_digits_but_is_not_digits():
    digits = load_digits_dataset(0.3, 0)
    patches = load_photo_patches()
    assert patches.images.shape[1:] == digits.train.images.shape[1:] == (8, 8, 1)
    assert patches.images.dtype == digits.train.images.dtype
    assert patches.images.max() == 16 and patches.images.min() == 0
    # Strokes on black like the digits: a pool with few black pixels shifts BatchNorm statistics in training.
    assert abs((patches.images == 0).mean() - (digits.train.images == 0).mean()) < 0.1
    assert len(patches) > 1000
    assert not set(patches.hashes()) & (set(digits.train.hashes()) | set(digits.test.hashes()))
