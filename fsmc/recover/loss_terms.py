"""The loss terms a recovery step sums: each method's own, and the OE-FSMC plug-in's.

A term sees the step's batch (:class:`StepBatch`: positions into the batch plan's table, which
of them are shots, the student's outputs) and returns its weighted value; the engine sums the
terms in order. A method is the :class:`~fsmc.recover.loop.Objective` its terms are built from
(:func:`loss_terms`); the plug-in adds the joint logit distillation over ID ∪ OOD and the
complementary-label cross-entropy on the OOD images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from fsmc.data.complementary import draw_ood_labels
from fsmc.recover.losses import weighted_cross_entropy

LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class StepBatch:
    """One step's batch: ``positions`` (CPU) into the plan's table, ``is_id`` (on the device), the student's outputs."""

    positions: torch.Tensor
    is_id: torch.Tensor
    outputs: torch.Tensor  # what the method compares with the teacher's targets (logits or feature maps)
    logits: torch.Tensor


def split_mean(loss_fn: LossFunction, outputs: torch.Tensor, targets: torch.Tensor, is_id: torch.Tensor, ood_weight: float | None) -> torch.Tensor:
    """``loss_fn`` over the batch, or (with ``ood_weight``) its mean over the ID images plus ``ood_weight`` x its mean over the OOD ones."""
    if ood_weight is None or is_id.all() or not is_id.any():
        return loss_fn(outputs, targets)
    return loss_fn(outputs[is_id], targets[is_id]) + ood_weight * loss_fn(outputs[~is_id], targets[~is_id])


@dataclass(frozen=True)
class Distillation:
    """``weight * D(student, teacher)`` over the batch: the method's own term (``on="outputs"``) or the plug-in's
    joint logit distillation over ID ∪ OOD (``on="logits"``)."""

    weight: float
    loss_fn: LossFunction
    teacher: torch.Tensor  # the teacher's rows of the table (targets or logits)
    on: str  # "outputs" or "logits"
    ood_weight: float | None  # None: every image weighs alike; else the OOD mean weighs this much beside the ID mean

    def __call__(self, batch: StepBatch) -> torch.Tensor:
        student = batch.outputs if self.on == "outputs" else batch.logits
        target = self.teacher[batch.positions].to(student.device)
        return self.weight * split_mean(self.loss_fn, student, target, batch.is_id, self.ood_weight)


@dataclass(frozen=True)
class LabelTerms:
    """``weight * [CE(s(x), y) on the shots + lambda_ood * CE_w(s(x~), y~) on the OOD images]``.

    ``y~`` is drawn from the complementary distribution Gamma afresh every step, ``w`` the class weights
    (:mod:`fsmc.data.complementary`); the OOD part only with the plug-in (``lambda_ood`` 0 otherwise).
    """

    weight: float
    labels: torch.Tensor  # the shots' labels, rows < n_id of the table
    n_id: int
    lambda_ood: float
    ood_distribution: torch.Tensor
    class_weights: torch.Tensor
    generator: torch.Generator

    def __call__(self, batch: StepBatch) -> torch.Tensor:
        logits, is_id = batch.logits, batch.is_id
        term = torch.zeros((), device=logits.device)
        if is_id.any():
            shots = batch.positions[batch.positions < self.n_id]
            term = term + F.cross_entropy(logits[is_id], self.labels[shots].to(logits.device))
        if self.lambda_ood and not is_id.all():
            ood_labels = draw_ood_labels(self.ood_distribution, int((~is_id).sum()), self.generator).to(logits.device)
            term = term + self.lambda_ood * weighted_cross_entropy(logits[~is_id], ood_labels, self.class_weights)
        return self.weight * term


def total_loss(terms: list[Callable[[StepBatch], torch.Tensor]], batch: StepBatch) -> torch.Tensor:
    """The step's loss: the terms summed in order (from zero, so a term-less method trains on nothing)."""
    loss = torch.zeros((), device=batch.logits.device)
    for term in terms:
        loss = loss + term(batch)
    return loss

