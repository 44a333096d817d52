"""A gradient method's recovery, with the OE-FSMC plug-in, as a configuration of the recovery engine.

A method supplies an :class:`Objective`: which student outputs are distilled
towards which teacher targets (logits for bp/kd/cd's fine-tuning, the pre-pooling
feature map for mir), and the weights of its two terms::

    L = d * D(student outputs, teacher targets)  +  l * CE(s(x), y)

With the OE-FSMC plug-in (``recover.oe``, reconstructed as in notes/papers.md §1.3)
every batch of ``batch_size`` images is drawn from ID ∪ OOD (uniformly, or with
``id_per_batch`` shots in each) and::

    L = d * D over ID ∪ OOD                                   (joint distillation)
      + joint_kd * KD(s, t) over ID ∪ OOD                     (methods that do not distil logits: mir, bp)
      + l * [ CE(s(x), y) + lambda_ood * CE_w(s(x~), y~) ]    (label terms)

with ``y~`` re-drawn from the complementary distribution Gamma every batch and
``w`` the class-dependent weights (``fsmc.data.complementary``). Why the joint
logit term: the teacher's answers on thousands of OOD images are the only signal
here that is not skewed by the few-shot prior, so every method gets it; a
feature-mimicking method (mir) gets it at a small weight beside its own term.
The plug-in is active only when OOD images exist: with an empty pool, ``oe=true``
trains exactly as ``oe=false``.

Early stopping (``recover.early_stopping``; ``auto`` = on exactly when OOD images
join training): every ``eval_every`` steps a held-out signal is measured, the best
student is kept, and training stops after ``patience`` checks without improvement.
With OOD images the held-out set is ``ood_holdout`` OOD images and the signal is
KD to the teacher on them, so no shot is taken from the rarest classes (the old
signal held out 20 % of the shots: 41 of 199 at K_max 50, rho 10). Without OOD it
is the class-balanced cross-entropy on a stratified ``holdout_fraction`` of the
shots (a class whose ``round(fraction * n_c)`` is 0 keeps all its shots).

:func:`train` builds the three parts of :func:`fsmc.recover.engine.run_engine` from the method and
``recover.*``: the batch plan (:mod:`fsmc.recover.batch_plan`), the loss terms
(:mod:`fsmc.recover.loss_terms`) and the callbacks (:mod:`fsmc.recover.callbacks`: the loss curve,
early stopping). The engine owns the optimiser, device, precision and layout. Teacher targets come in
precomputed (``fsmc.teacher_outputs``): the few-shot and OOD images are fixed and not augmented, so
the teacher never runs in the loop.
Departures from the paper (whose formulas could not be read): the weights
``alpha`` / ``lambda_ood`` / ``joint_kd``, the batch composition and the
early-stopping signal are this re-implementation's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from fsmc.config import RecoverParams
from fsmc.data.complementary import class_prior, class_weights, complementary_distribution
from fsmc.recover.batch_plan import plan_batches
from fsmc.recover.callbacks import Callback, EarlyStopping, LossCurve
from fsmc.recover.data import RecoveryData
from fsmc.recover.engine import run_engine
from fsmc.recover.loss_terms import Distillation, LabelTerms
from fsmc.recover.losses import distillation_loss
from fsmc.recover.report import RecoveryReport
from fsmc.runtime import pick_device, seed_everything, training_precision


@dataclass(frozen=True)
class Objective:
    """What a gradient method trains: ``d * distill(outputs(student, x), target) + l * label terms``."""

    distill_weight: float
    label_weight: float
    # (student, images) -> (outputs compared with the teacher's, logits for the label terms)
    outputs: Callable[[nn.Module, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    distill: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    target: str = "logits"  # which teacher outputs of RecoveryData: logits or features


def logit_outputs(student: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The student's logits, both for distillation and for the label terms."""
    logits = student(images)
    return logits, logits


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
    report = RecoveryReport(method=params.label, train_size=len(data.labels), oe_active=oe_active(data, params), lr=params.lr)
    if params.oe and not report.oe_active:
        report.notes.append("oe=true but the OOD pool is empty: the plug-in had nothing to add")
    return report


def train(
    student: nn.Module, data: RecoveryData, params: RecoverParams, objective: Objective, report: RecoveryReport | None = None
) -> tuple[nn.Module, RecoveryReport]:
    """Train a copy of ``student`` on ``objective`` (plus the plug-in's terms) for ``params.steps`` (fewer with early stopping).

    The configuration of :func:`fsmc.recover.engine.run_engine` for one method: its batch plan, its loss
    terms (the method's distillation and label terms, the plug-in's joint KD and complementary labels)
    and the callbacks (loss curve, early stopping).

    Returns:
        The trained student (eval mode, CPU) and the report.
    """
    report = report or start_report(data, params)
    use_oe, stop_early = oe_active(data, params), early_stopping_on(data, params)
    if not use_oe:
        data = data.without_ood()
    generator = seed_everything(params.seed)
    plan = plan_batches(data, params, objective.target, hold_out=stop_early)

    prior = class_prior(torch.bincount(data.labels, minlength=data.num_classes).tolist())
    ood_distribution = complementary_distribution(prior)
    weights = class_weights(prior).to(pick_device())
    # With shots in every batch, ID and OOD images are averaged apart and the OOD mean weighted by
    # ood_weight, so thousands of OOD images cannot drown the few shots; a uniform draw weighs every image alike.
    ood_weight = params.ood_weight if params.id_per_batch else None
    terms: list = []
    if objective.distill_weight:
        terms.append(Distillation(objective.distill_weight, objective.distill, plan.targets, "outputs", ood_weight))
    # The plug-in's joint distillation: methods that do not already distil logits (mir mimics features,
    # bp has no teacher) also match the teacher's logits over ID ∪ OOD, weighted by joint_kd.
    if use_oe and params.joint_kd and not (objective.target == "logits" and objective.distill_weight):
        kd = functools.partial(distillation_loss, temperature=params.temperature)
        terms.append(Distillation(params.joint_kd, kd, plan.teacher_logits, "logits", ood_weight))
    if objective.label_weight:
        lambda_ood = params.lambda_ood if use_oe else 0.0
        terms.append(LabelTerms(objective.label_weight, plan.labels, plan.n_id, lambda_ood, ood_distribution, weights, generator))

    callbacks: list[Callback] = [LossCurve(report, params.steps, every=LOSS_CURVE_EVERY)]
    if plan.held_out is not None:
        report.holdout_size = len(plan.held_out.images)
        callbacks.append(
            EarlyStopping(plan.held_out, report, params.steps, params.eval_every, params.patience, data.num_classes, params.temperature)
        )
    report.train_size, report.ood_size = plan.n_id, plan.n_ood
    report.early_stopping, report.best_step = stop_early, params.steps
    report.precision = training_precision(params.precision, pick_device())
    if use_oe:
        report.ood_label_distribution = [round(v, 6) for v in ood_distribution.tolist()]
        report.class_weights = [round(v, 6) for v in weights.cpu().tolist()]
    student, report.steps_run = run_engine(student, plan, objective.outputs, terms, callbacks, params, generator)
    return student, report


# Steps per point of the training-loss curve (MLflow step metric "recovery_loss").
LOSS_CURVE_EVERY = 10
