"""The shared gradient loop of the recovery methods, with the OE-FSMC plug-in.

A method supplies an :class:`Objective`: which student outputs are distilled
towards which teacher targets (logits for bp/kd/cd's fine-tuning, the pre-pooling
feature map for mir), and the weights of its two terms::

    L = d * D(student outputs, teacher targets)  +  l * CE(s(x), y)

With the OE-FSMC plug-in (``recover.oe``, reconstructed as in notes/papers.md §1.3)::

    L = d * D over ID ∪ OOD                                   (joint distillation)
      + l * [ CE(s(x), y) + lambda_ood * CE_w(s(x~), y~) ]    (label terms)

with ``y~`` re-drawn from the complementary distribution Gamma every batch and
``w`` the class-dependent weights (``fsmc.recover.complementary``). A label-free
method (``l = 0``, e.g. mir) thus takes OOD images as unlabelled inputs only.
The plug-in is active only when OOD images exist: with an empty pool, ``oe=true``
trains exactly as ``oe=false``.

Early stopping (``recover.early_stopping``; ``auto`` = on exactly when OOD images
join training, to keep the student from memorising their drawn labels): a
stratified slice of the few-shot set is held out; every ``eval_every`` steps the
class-balanced cross-entropy on it is measured and the best student is kept;
training stops after ``patience`` checks without improvement. A class with so few
shots that ``round(holdout_fraction * n_c)`` is 0 keeps them all for training and
is absent from the held-out loss (a known limit: with 2 shots, holding one out
would halve what the student sees of that class). Departures from the
paper (whose formulas could not be read): the weighting by ``alpha`` /
``lambda_ood`` and the early-stopping criterion are this re-implementation's.

Teacher targets come in precomputed (``fsmc.teacher_outputs``): the few-shot and
OOD images are fixed and not augmented, so the teacher never runs in the loop.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from fsmc.compress.quantization import observers_frozen
from fsmc.config import RecoverParams
from fsmc.recover.complementary import class_prior, class_weights, complementary_distribution, draw_ood_labels
from fsmc.recover.losses import weighted_cross_entropy
from fsmc.runtime import pick_device, predict_logits, seed_everything


@dataclass(frozen=True)
class RecoveryData:
    """The few-shot set (images in [0, 1], labels), the unlabelled OOD images, and the teacher's outputs on both.

    ``teacher_features`` / ``teacher_ood_features`` (pre-pooling maps) are filled only
    for methods that mimic features; empty tensors otherwise.
    """

    images: torch.Tensor
    labels: torch.Tensor
    ood_images: torch.Tensor
    num_classes: int
    teacher_logits: torch.Tensor
    teacher_ood_logits: torch.Tensor
    teacher_features: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    teacher_ood_features: torch.Tensor = field(default_factory=lambda: torch.empty(0))

    def without_ood(self) -> RecoveryData:
        """The same data with no OOD images (the plug-in off)."""
        return RecoveryData(
            self.images, self.labels, self.ood_images[:0], self.num_classes, self.teacher_logits,
            self.teacher_ood_logits[:0], self.teacher_features, self.teacher_ood_features[:0],
        )


@dataclass(frozen=True)
class Objective:
    """What a gradient method trains: ``d * distill(outputs(student, x), target) + l * label terms``."""

    distill_weight: float
    label_weight: float
    # (student, images) -> (outputs compared with the teacher's, logits for the label terms)
    outputs: Callable[[nn.Module, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    distill: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    target: str = "logits"  # which teacher outputs of RecoveryData: logits or features


@dataclass
class RecoveryReport:
    """What happened during recovery."""

    method: str
    steps_run: int = 0
    best_step: int = 0
    train_size: int = 0
    holdout_size: int = 0
    ood_size: int = 0
    oe_active: bool = False
    early_stopping: bool = False
    ood_label_distribution: list[float] = field(default_factory=list)
    class_weights: list[float] = field(default_factory=list)
    holdout_curve: list[tuple[int, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def logit_outputs(student: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The student's logits, both for distillation and for the label terms."""
    logits = student(images)
    return logits, logits


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


def oe_active(data: RecoveryData, params: RecoverParams) -> bool:
    """Whether the OE-FSMC plug-in has anything to add: asked for, and OOD images exist."""
    return params.oe and len(data.ood_images) > 0


def early_stopping_on(data: RecoveryData, params: RecoverParams) -> bool:
    """``recover.early_stopping`` resolved: ``auto`` follows the plug-in."""
    if params.early_stopping == "auto":
        return oe_active(data, params)
    return params.early_stopping == "on"


def start_report(data: RecoveryData, params: RecoverParams) -> RecoveryReport:
    """A report that records whether the plug-in could act."""
    report = RecoveryReport(method=params.label, train_size=len(data.labels), oe_active=oe_active(data, params))
    if params.oe and not report.oe_active:
        report.notes.append("oe=true but the OOD pool is empty: the plug-in had nothing to add")
    return report


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


def train(
    student: nn.Module, data: RecoveryData, params: RecoverParams, objective: Objective, report: RecoveryReport | None = None
) -> tuple[nn.Module, RecoveryReport]:
    """Train a copy of ``student`` on ``objective`` for ``params.steps`` (fewer with early stopping).

    Returns:
        The trained student (eval mode, CPU) and the report.
    """
    report = report or start_report(data, params)
    use_oe, stop_early = oe_active(data, params), early_stopping_on(data, params)
    if not use_oe:
        data = data.without_ood()
    generator = seed_everything(params.seed)
    device = pick_device()
    student = copy.deepcopy(student).to(device)

    labels_np = data.labels.numpy()
    if stop_early:
        train_pos, holdout_pos = holdout_split(labels_np, params.holdout_fraction, params.seed)
    else:
        train_pos, holdout_pos = np.arange(len(labels_np)), np.empty(0, dtype=np.int64)
    by_target = {"logits": (data.teacher_logits, data.teacher_ood_logits), "features": (data.teacher_features, data.teacher_ood_features)}
    teacher_id, teacher_ood = by_target[objective.target]

    prior = class_prior(torch.bincount(data.labels, minlength=data.num_classes).tolist())
    ood_distribution = complementary_distribution(prior)
    weights = class_weights(prior).to(device)

    train_images, train_labels, train_teacher = data.images[train_pos], data.labels[train_pos], teacher_id[train_pos]
    holdout_images, holdout_labels = data.images[holdout_pos], data.labels[holdout_pos]

    trainable = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=params.lr, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=params.steps)
    id_stream = _batches(len(train_pos), params.batch_size, generator)
    ood_stream = _batches(len(data.ood_images), params.ood_batch_size, generator) if use_oe else None

    report.train_size, report.holdout_size, report.ood_size = len(train_pos), len(holdout_pos), len(data.ood_images)
    report.early_stopping, report.best_step = stop_early, params.steps
    if use_oe:
        report.ood_label_distribution = [round(v, 6) for v in ood_distribution.tolist()]
        report.class_weights = [round(v, 6) for v in weights.cpu().tolist()]
    best_loss, best_state, checks_without_gain = float("inf"), None, 0
    progress = tqdm(range(1, params.steps + 1), desc=f"recover ({params.label})", unit="step", leave=False, disable=None)
    for step in progress:
        student.train()
        batch = next(id_stream)
        x, y, target = train_images[batch].to(device), train_labels[batch].to(device), train_teacher[batch].to(device)
        if ood_stream is not None:
            ood_batch = next(ood_stream)
            x = torch.cat([x, data.ood_images[ood_batch].to(device)])
            target = torch.cat([target, teacher_ood[ood_batch].to(device)])
        outputs, logits = objective.outputs(student, x)
        loss = torch.zeros((), device=device)
        if objective.distill_weight:
            loss = loss + objective.distill_weight * objective.distill(outputs, target)
        if objective.label_weight:
            n_id = len(y)
            label_term = F.cross_entropy(logits[:n_id], y)
            if ood_stream is not None:
                ood_labels = draw_ood_labels(ood_distribution, len(x) - n_id, generator).to(device)
                label_term = label_term + params.lambda_ood * weighted_cross_entropy(logits[n_id:], ood_labels, weights)
            loss = loss + objective.label_weight * label_term
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        report.steps_run = step
        progress.set_postfix(loss=f"{loss.item():.3f}")

        if len(holdout_pos) and (step % params.eval_every == 0 or step == params.steps):
            with observers_frozen(student):
                holdout_logits = predict_logits(student, holdout_images)
            holdout_loss = _balanced_ce(holdout_logits, holdout_labels, data.num_classes)
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
