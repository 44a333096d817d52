"""The batch plan of a recovery run: which shots and OOD images each step trains on, and which are held out.

One table of training images (the shots first, then the OOD images) with the teacher's targets
and logits beside it; each step draws positions into it (:func:`mixed_batches`). With early
stopping, a held-out set is set aside first: OOD images when the plug-in is on (so no shot is
taken from the rarest classes), else a stratified share of the shots.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from fsmc.config import RecoverParams
from fsmc.recover.data import RecoveryData


@dataclass(frozen=True)
class HeldOut:
    """Images the early-stopping signal is measured on: ``signal`` "teacher" (KD to ``target`` logits) or "labels"."""

    images: torch.Tensor
    target: torch.Tensor
    signal: str


@dataclass(frozen=True)
class BatchPlan:
    """The training table and how batches are drawn from it."""

    images: torch.Tensor  # shots first, then OOD images
    targets: torch.Tensor  # the teacher's targets the method distils towards (logits or feature maps), same rows
    teacher_logits: torch.Tensor  # the teacher's logits, same rows (the plug-in's joint distillation)
    labels: torch.Tensor  # the shots' labels (rows < n_id)
    n_id: int
    batch_size: int
    id_per_batch: int
    held_out: HeldOut | None

    @property
    def n_ood(self) -> int:
        """OOD images in the table."""
        return len(self.images) - self.n_id

    def batches(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """Endless stream of positions into the table (see :func:`mixed_batches`)."""
        return mixed_batches(self.n_id, self.n_ood, self.batch_size, self.id_per_batch, generator)


def holdout_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of the few-shot set; every class keeps at least one training shot.

    Returns:
        (train positions, holdout positions), both sorted.
    """
    rng = np.random.default_rng(seed)
    train, holdout = [], []
    for cls in np.unique(labels):
        positions = rng.permutation(np.flatnonzero(labels == cls))
        n_out = min(int(round(fraction * len(positions))), len(positions) - 1)
        holdout.extend(positions[:n_out].tolist())
        train.extend(positions[n_out:].tolist())
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(holdout, dtype=np.int64))


def plan_batches(data: RecoveryData, params: RecoverParams, target: str, hold_out: bool) -> BatchPlan:
    """The plan for ``data`` (OOD images already dropped when the plug-in is off); ``target``: "logits" or "features"."""
    n_ood = len(data.ood_images)
    id_pos, ood_pos = np.arange(len(data.labels)), np.arange(n_ood)
    held_out = None
    if hold_out and n_ood:
        n_out = min(params.ood_holdout, n_ood // 2)
        permutation = np.random.default_rng(params.seed).permutation(n_ood)
        ood_pos, holdout_ood = np.sort(permutation[n_out:]), np.sort(permutation[:n_out])
        held_out = HeldOut(data.ood_images[holdout_ood], data.teacher_ood_logits[holdout_ood], "teacher")
    elif hold_out:
        id_pos, holdout_id = holdout_split(data.labels.numpy(), params.holdout_fraction, params.seed)
        held_out = HeldOut(data.images[holdout_id], data.labels[holdout_id], "labels")
    by_target = {"logits": (data.teacher_logits, data.teacher_ood_logits), "features": (data.teacher_features, data.teacher_ood_features)}
    teacher_id, teacher_ood = by_target[target]
    return BatchPlan(
        images=torch.cat([data.images[id_pos], data.ood_images[ood_pos]]),
        targets=torch.cat([teacher_id[id_pos], teacher_ood[ood_pos]]) if len(teacher_id) else teacher_id,
        teacher_logits=torch.cat([data.teacher_logits[id_pos], data.teacher_ood_logits[ood_pos]]),
        labels=data.labels[id_pos],
        n_id=len(id_pos),
        batch_size=params.batch_size,
        id_per_batch=params.id_per_batch,
        held_out=held_out,
    )


def index_stream(size: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless stream of ``batch_size`` indices from shuffled passes over ``range(size)``, a batch crossing pass ends."""
    pending = torch.empty(0, dtype=torch.int64)
    while True:
        while len(pending) < batch_size:
            pending = torch.cat([pending, torch.randperm(size, generator=generator)])
        yield pending[:batch_size]
        pending = pending[batch_size:]


def mixed_batches(n_id: int, n_ood: int, batch_size: int, id_per_batch: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless stream of positions into ``ID ++ OOD`` (ID first).

    ``id_per_batch = 0`` draws every batch from one shuffled pass over ID ∪ OOD (ID images
    appear as often as OOD ones); otherwise each batch holds ``id_per_batch`` few-shot images
    and ``batch_size - id_per_batch`` OOD images, each from its own shuffled pass.
    """
    if n_ood == 0 or id_per_batch == 0:
        yield from index_stream(n_id + n_ood, batch_size, generator)
        return
    id_stream = index_stream(n_id, id_per_batch, generator)
    ood_stream = index_stream(n_ood, batch_size - id_per_batch, generator)
    while True:
        yield torch.cat([next(id_stream), next(ood_stream) + n_id])
