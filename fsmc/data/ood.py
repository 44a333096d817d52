"""OOD pool curation: de-duplicate, drop anything equal to an in-distribution image, draw N."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fsmc.errors import FsmcError


def ood_budget(mode: str, amount: float, k_max: int, counts: dict[int, int]) -> int | None:
    """Number of OOD images: absolute, ``amount`` x the class deficit sum_c (k_max - n_c), or None for all usable."""
    if mode == "all":
        return None
    if mode == "absolute":
        return int(amount)
    deficit = sum(k_max - n for n in counts.values())
    return math.ceil(amount * deficit)


@dataclass(frozen=True)
class OodDraw:
    """Chosen pool indices (sorted) and what curation removed."""

    indices: np.ndarray
    pool_size: int
    duplicates_removed: int
    id_overlap_removed: int
    excluded_class_removed: int = 0
    near_id_removed: int = 0


def curate_ood(
    pool_hashes: list[str],
    id_hashes: set[str],
    size: int | None,
    seed: int,
    pool_labels: np.ndarray | None = None,
    excluded_labels: frozenset[int] = frozenset(),
    near_id: np.ndarray | None = None,
) -> OodDraw:
    """Draw ``size`` distinct OOD images, none equal to an in-distribution image.

    Args:
        pool_hashes: content hash of every pool image, in pool order.
        id_hashes: hashes of every in-distribution image (train and test).
        size: how many to draw (None: every usable image, in pool order).
        seed: seeds the draw.
        pool_labels: source labels of the pool images (to drop ``excluded_labels``).
        excluded_labels: source classes that are really in-distribution classes.
        near_id: per pool image, True where the near-ID filter drops it.
    """
    seen: set[str] = set()
    eligible, duplicates, overlap, excluded, near = [], 0, 0, 0, 0
    for index, digest in enumerate(pool_hashes):
        if pool_labels is not None and int(pool_labels[index]) in excluded_labels:
            excluded += 1
            continue
        if digest in seen:
            duplicates += 1
            continue
        seen.add(digest)
        if digest in id_hashes:
            overlap += 1
            continue
        if near_id is not None and near_id[index]:
            near += 1
            continue
        eligible.append(index)
    if size is None:
        return OodDraw(np.asarray(eligible, dtype=np.int64), len(pool_hashes), duplicates, overlap, excluded, near)
    if size > len(eligible):
        raise FsmcError(
            f"The OOD budget asks for {size} images but the pool has only {len(eligible)} usable ones "
            f"({len(pool_hashes)} in the pool; removed: {excluded} of excluded classes, {duplicates} duplicates, "
            f"{overlap} equal to in-distribution images, {near} near-ID); lower curate_ood.budget."
        )
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(np.asarray(eligible, dtype=np.int64), size=size, replace=False)) if size else np.empty(0, np.int64)
    return OodDraw(chosen, len(pool_hashes), duplicates, overlap, excluded, near)
