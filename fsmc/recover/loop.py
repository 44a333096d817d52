"""The recovery training loop for logit methods (``fsmc.recover.methods``), with the OE-FSMC plug-in.

A method gives the weights of its two terms (``bp``: 0 and 1; ``kd``: alpha and 1 - alpha)::

    L = d * T^2 * KL(t || s)  +  l * CE(s(x), y)

With the OE-FSMC plug-in (``recover.oe``, reconstructed as in notes/papers.md §1.3)::

    L = d * T^2 * KL(t || s) over ID ∪ OOD                (joint distillation)
      + l * [ CE(s(x), y) + lambda_ood * CE_w(s(x~), y~) ]

with ``y~`` re-drawn from the complementary distribution Gamma every batch and
``w`` the class-dependent weights (``fsmc.recover.complementary``). Early
stopping: a stratified slice of the few-shot set is held out; every
``eval_every`` steps the class-balanced cross-entropy on it is measured and the
best student is kept; training stops after ``patience`` checks without
improvement. Departures from the paper (whose formulas could not be read): the
loss weighting by ``alpha`` / ``lambda_ood`` and the early-stopping criterion
are this re-implementation's choices.

Teacher logits come in precomputed (``fsmc.teacher_outputs``): the few-shot and
OOD images are fixed and not augmented, so the teacher never runs in the loop.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from fsmc.config import RecoverParams
from fsmc.models.normalized import NormalizedClassifier
from fsmc.recover.complementary import class_prior, class_weights, complementary_distribution, draw_ood_labels
from fsmc.recover.losses import distillation_loss, weighted_cross_entropy
from fsmc.recover.methods import METHODS
from fsmc.runtime import pick_device, predict_logits, seed_everything


@dataclass(frozen=True)
class RecoveryData:
    """The few-shot set (images in [0, 1], labels), the unlabelled OOD images, and the teacher's logits on both."""

    images: torch.Tensor
    labels: torch.Tensor
    ood_images: torch.Tensor
    num_classes: int
    teacher_logits: torch.Tensor
    teacher_ood_logits: torch.Tensor


@dataclass
class RecoveryReport:
    """What happened during recovery."""

    method: str
    steps_run: int
    best_step: int
    train_size: int
    holdout_size: int
    ood_size: int
    ood_label_distribution: list[float] = field(default_factory=list)
    class_weights: list[float] = field(default_factory=list)
    holdout_curve: list[tuple[int, float]] = field(default_factory=list)


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


def _balanced_ce(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    counts = torch.bincount(labels, minlength=num_classes).float()
    weights = torch.where(counts > 0, 1.0 / counts.clamp_min(1), torch.zeros_like(counts))
    return float(F.cross_entropy(logits, labels, weight=weights))


def _batches(size: int, batch_size: int, generator: torch.Generator):
    """Endless stream of index batches, reshuffled every pass."""
    while True:
        order = torch.randperm(size, generator=generator)
        for start in range(0, size, batch_size):
            yield order[start : start + batch_size]


def recover(student: NormalizedClassifier, data: RecoveryData, params: RecoverParams) -> tuple[NormalizedClassifier, RecoveryReport]:
    """Train ``student`` (a copy) towards the teacher's logits on the few-shot data.

    Returns:
        The recovered student (eval mode, CPU) and a :class:`RecoveryReport`.
    """
    method = METHODS[params.base_method]
    distill_weight, label_weight = method.distill_weight(params), method.label_weight(params)
    use_oe = params.uses_oe
    generator = seed_everything(params.seed)
    device = pick_device()
    student = copy.deepcopy(student).to(device)

    labels_np = data.labels.numpy()
    if use_oe:
        train_pos, holdout_pos = holdout_split(labels_np, params.holdout_fraction, params.seed)
    else:
        train_pos, holdout_pos = np.arange(len(labels_np)), np.empty(0, dtype=np.int64)
    teacher_id = data.teacher_logits
    ood_images = data.ood_images if use_oe else data.images[:0]
    teacher_ood = data.teacher_ood_logits if use_oe else data.teacher_logits[:0]

    counts = torch.bincount(data.labels, minlength=data.num_classes).tolist()
    prior = class_prior(counts)
    ood_distribution = complementary_distribution(prior)
    weights = class_weights(prior).to(device)

    train_images, train_labels = data.images[train_pos], data.labels[train_pos]
    train_teacher = teacher_id[train_pos]
    holdout_images, holdout_labels = data.images[holdout_pos], data.labels[holdout_pos]

    optimizer = torch.optim.SGD(student.parameters(), lr=params.lr, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=params.steps)
    id_stream = _batches(len(train_pos), params.batch_size, generator)
    ood_stream = _batches(len(ood_images), params.ood_batch_size, generator) if len(ood_images) else None

    report = RecoveryReport(
        method=params.label,
        steps_run=0,
        best_step=params.steps,
        train_size=len(train_pos),
        holdout_size=len(holdout_pos),
        ood_size=len(ood_images),
        ood_label_distribution=[round(v, 6) for v in ood_distribution.tolist()] if use_oe else [],
        class_weights=[round(v, 6) for v in weights.cpu().tolist()] if use_oe else [],
    )
    best_loss, best_state, checks_without_gain = float("inf"), None, 0
    progress = tqdm(range(1, params.steps + 1), desc=f"recover ({params.label})", unit="step", leave=False, disable=None)
    for step in progress:
        student.train()
        batch = next(id_stream)
        x, y, t_logits = train_images[batch].to(device), train_labels[batch].to(device), train_teacher[batch].to(device)
        if ood_stream is not None:
            ood_batch = next(ood_stream)
            x_ood, t_ood = ood_images[ood_batch].to(device), teacher_ood[ood_batch].to(device)
            logits = student(torch.cat([x, x_ood]))
            s_id, s_ood = logits[: len(x)], logits[len(x) :]
            ood_labels = draw_ood_labels(ood_distribution, len(x_ood), generator).to(device)
            kd = distillation_loss(logits, torch.cat([t_logits, t_ood]), params.temperature)
            label_term = F.cross_entropy(s_id, y) + params.lambda_ood * weighted_cross_entropy(s_ood, ood_labels, weights)
        else:
            s_id = student(x)
            kd = distillation_loss(s_id, t_logits, params.temperature)
            label_term = F.cross_entropy(s_id, y)
        loss = distill_weight * kd + label_weight * label_term
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        report.steps_run = step
        progress.set_postfix(loss=f"{loss.item():.3f}")

        if len(holdout_pos) and (step % params.eval_every == 0 or step == params.steps):
            holdout_loss = _balanced_ce(predict_logits(student, holdout_images), holdout_labels, data.num_classes)
            report.holdout_curve.append((step, round(holdout_loss, 6)))
            if holdout_loss < best_loss - 1e-6:
                best_loss, best_state, checks_without_gain = holdout_loss, copy.deepcopy(student.state_dict()), 0
                report.best_step = step
            else:
                checks_without_gain += 1
                if checks_without_gain >= params.patience:
                    break
    progress.close()
    if best_state is not None:
        student.load_state_dict(best_state)
    return student.cpu().eval(), report
