"""Few-shot, class-imbalanced sampling of a training split.

Counts per class follow a profile over class *ranks*; which class gets which
rank comes from a seeded permutation, so the minority classes are not always
the highest class indices.

* ``exp`` (LDAM / Open-Sampling long tail): ``n_r = floor(k_max * rho^(-r/(C-1)))``.
* ``step`` (Buda et al.): the first ``ceil(C/2)`` ranks get ``k_max``, the rest
  ``floor(k_max / rho)``.

A ratio that would leave a class with no sample (``rho > k_max``) is refused,
not clamped: silently giving that class one sample would change the profile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fsmc.errors import FsmcError

# Guards floor() against float error, e.g. 20 * 10**-1 == 1.9999999999999998.
_FLOOR_EPS = 1e-9


def profile_counts(num_classes: int, k_max: int, imbalance_ratio: float, profile: str) -> list[int]:
    """Shots per class rank (rank 0 is the most frequent class)."""
    if imbalance_ratio < 1 or imbalance_ratio > k_max:
        raise FsmcError(
            f"imbalance_ratio={imbalance_ratio} must lie in [1, k_max={k_max}] so every class keeps at least one sample."
        )
    if profile == "exp":
        if num_classes == 1:
            return [k_max]
        return [
            math.floor(k_max * imbalance_ratio ** (-rank / (num_classes - 1)) + _FLOOR_EPS)
            for rank in range(num_classes)
        ]
    if profile == "step":
        majority = math.ceil(num_classes / 2)
        minority_count = math.floor(k_max / imbalance_ratio + _FLOOR_EPS)
        return [k_max] * majority + [minority_count] * (num_classes - majority)
    raise FsmcError(f"profile={profile!r} is unknown; valid profiles: exp, step.")


@dataclass(frozen=True)
class FewShotDraw:
    """Result of a draw: chosen train indices (sorted) and the per-class plan."""

    indices: np.ndarray
    counts: dict[int, int]  # class -> shots
    ranks: dict[int, int]  # class -> rank (0 = most frequent)


def sample_few_shot(
    labels: np.ndarray, num_classes: int, k_max: int, imbalance_ratio: float, profile: str, seed: int
) -> FewShotDraw:
    """Draw an imbalanced few-shot subset of a labelled split.

    Args:
        labels: labels of the split to draw from.
        num_classes: C; every class in ``range(C)`` gets at least one shot.
        k_max: shots of the most frequent class.
        imbalance_ratio: rho = n_max / n_min.
        profile: ``exp`` or ``step``.
        seed: seeds both the rank permutation and the per-class draws.

    Returns:
        The sorted indices into ``labels`` and the class -> count / rank maps.
    """
    per_rank = profile_counts(num_classes, k_max, imbalance_ratio, profile)
    rng = np.random.default_rng(seed)
    class_of_rank = rng.permutation(num_classes)
    chosen, counts, ranks = [], {}, {}
    for rank, cls in enumerate(class_of_rank.tolist()):
        pool = np.flatnonzero(labels == cls)
        need = per_rank[rank]
        if len(pool) < need:
            fits_every_class = int(np.bincount(labels[labels >= 0], minlength=num_classes)[:num_classes].min())
            raise FsmcError(
                f"Class {cls} has only {len(pool)} training images but the profile asks for {need} shots of it; "
                f"lower sample_few_shot.k_max (now {k_max}): any value up to {fits_every_class} fits every class."
            )
        chosen.append(rng.choice(pool, size=need, replace=False))
        counts[cls], ranks[cls] = need, rank
    indices = np.sort(np.concatenate(chosen))
    return FewShotDraw(indices=indices, counts=dict(sorted(counts.items())), ranks=dict(sorted(ranks.items())))


def minority_classes(counts: dict[int, int], ranks: dict[int, int], how_many: int) -> list[int]:
    """The ``how_many`` classes with the fewest shots (ties broken by rank, rarest first)."""
    order = sorted(counts, key=lambda c: (counts[c], -ranks[c]))
    return sorted(order[: min(how_many, len(order))])
