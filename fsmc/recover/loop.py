"""The shared gradient loop of the recovery methods, with the OE-FSMC plug-in.

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

Speed: on CPU the student trains in channels-last layout; ``recover.precision``
``auto`` uses bf16 autocast only where the device computes bf16 natively (a CPU
without AVX-512-BF16/AMX would emulate it many times slower than fp32). Teacher
targets come in precomputed (``fsmc.teacher_outputs``): the few-shot and OOD
images are fixed and not augmented, so the teacher never runs in the loop.
Departures from the paper (whose formulas could not be read): the weights
``alpha`` / ``lambda_ood`` / ``joint_kd``, the batch composition and the
early-stopping signal are this re-implementation's.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from fsmc.compress.quantization import observers_frozen
from fsmc.config import RecoverParams
from fsmc.data.complementary import class_prior, class_weights, complementary_distribution, draw_ood_labels
from fsmc.recover.data import RecoveryData
from fsmc.recover.losses import distillation_loss, weighted_cross_entropy
from fsmc.runtime import pick_device, predict_logits, seed_everything, training_precision


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
    loss_curve: list[tuple[int, float]] = field(default_factory=list)  # (step, mean training loss since the last point)
    precision: str = "fp32"
    lr: float = 0.0  # the learning rate the optimiser started from (recover.lr)
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


def layerwise_images(data: RecoveryData, params: RecoverParams) -> torch.Tensor:
    """The unlabelled images a layer-wise solve (fskd, cd) uses: the shots, plus OOD images with the plug-in.

    At most ``recover.layerwise_ood`` OOD images (a seeded draw), since every layer's inputs over
    all of them are held in memory and a least-squares fit of a few hundred channels saturates long before.
    """
    if not oe_active(data, params):
        return data.images
    ood = data.ood_images
    if len(ood) > params.layerwise_ood:
        chosen = np.sort(np.random.default_rng(params.seed).choice(len(ood), params.layerwise_ood, replace=False))
        ood = ood[torch.from_numpy(chosen)]
    return torch.cat([data.images, ood])


def layerwise_weights(n_id: int, n_ood: int, ood_weight: float) -> torch.Tensor:
    """Per-image weights of a layer-wise solve over ``layerwise_images``: the shots' mean weighs 1, the OOD images' ``ood_weight``.

    Why: the OOD images outnumber the shots, and an unweighted fit would match the
    teacher on them at the shots' expense (digits, 60 steps: fskd -4 pt top-1).
    """
    return torch.cat([torch.full((n_id,), 1.0 / n_id), torch.full((n_ood,), ood_weight / max(n_ood, 1))])


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


def _balanced_ce(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    counts = torch.bincount(labels, minlength=num_classes).float()
    weights = torch.where(counts > 0, 1.0 / counts.clamp_min(1), torch.zeros_like(counts))
    return float(F.cross_entropy(logits, labels, weight=weights))


def _index_stream(size: int, batch_size: int, generator: torch.Generator):
    """Endless stream of ``batch_size`` indices from shuffled passes over ``range(size)``, a batch crossing pass ends."""
    pending = torch.empty(0, dtype=torch.int64)
    while True:
        while len(pending) < batch_size:
            pending = torch.cat([pending, torch.randperm(size, generator=generator)])
        yield pending[:batch_size]
        pending = pending[batch_size:]


def mixed_batches(n_id: int, n_ood: int, batch_size: int, id_per_batch: int, generator: torch.Generator):
    """Endless stream of positions into ``ID ++ OOD`` (ID first).

    ``id_per_batch = 0`` draws every batch from one shuffled pass over ID ∪ OOD (ID images
    appear as often as OOD ones); otherwise each batch holds ``id_per_batch`` few-shot images
    and ``batch_size - id_per_batch`` OOD images, each from its own shuffled pass.
    """
    if n_ood == 0 or id_per_batch == 0:
        yield from _index_stream(n_id + n_ood, batch_size, generator)
        return
    id_stream = _index_stream(n_id, id_per_batch, generator)
    ood_stream = _index_stream(n_ood, batch_size - id_per_batch, generator)
    while True:
        yield torch.cat([next(id_stream), next(ood_stream) + n_id])


def _split_mean(loss_fn, outputs: torch.Tensor, targets: torch.Tensor, is_id: torch.Tensor, ood_weight: float | None) -> torch.Tensor:
    """``loss_fn`` over the batch, or (with ``ood_weight``) its mean over the ID images plus ``ood_weight`` x its mean over the OOD ones."""
    if ood_weight is None or is_id.all() or not is_id.any():
        return loss_fn(outputs, targets)
    return loss_fn(outputs[is_id], targets[is_id]) + ood_weight * loss_fn(outputs[~is_id], targets[~is_id])


def _holdout_loss(student: nn.Module, images: torch.Tensor, target: torch.Tensor, signal: str, num_classes: int, temperature: float) -> float:
    """The early-stopping signal on the held-out images: balanced CE on shots, or KD to the teacher on OOD images."""
    with observers_frozen(student):
        logits = predict_logits(student, images)
    if signal == "labels":
        return _balanced_ce(logits, target, num_classes)
    return float(distillation_loss(logits, target, temperature))


def train(
    student: nn.Module, data: RecoveryData, params: RecoverParams, objective: Objective, report: RecoveryReport | None = None
) -> tuple[nn.Module, RecoveryReport]:
    """Train a copy of ``student`` on ``objective`` for ``params.steps`` (fewer with early stopping).

    Returns:
        The trained student (eval mode, CPU) and the report.
    """
    if params.lr <= 0:  # 0 stands for the method's own rate, resolved by fsmc.recover.pipeline.with_method_defaults
        raise ValueError(f"train() needs a positive learning rate, got recover.lr={params.lr}")
    report = report or start_report(data, params)
    use_oe, stop_early = oe_active(data, params), early_stopping_on(data, params)
    if not use_oe:
        data = data.without_ood()
    generator = seed_everything(params.seed)
    device = pick_device()
    precision = training_precision(params.precision, device)
    student = copy.deepcopy(student).to(device)
    if device.type == "cpu":  # oneDNN's convolutions are faster on NHWC tensors (same numbers, other layout)
        student = student.to(memory_format=torch.channels_last)
    architecture_momenta = _follow_short_runs(student)

    # Early stopping never takes shots from the rarest classes when OOD images join: it holds out
    # OOD images and watches how far the student's logits are from the teacher's on them.
    n_ood = len(data.ood_images)
    id_pos, ood_pos = np.arange(len(data.labels)), np.arange(n_ood)
    holdout_signal = "none"
    if stop_early and use_oe:
        n_out = min(params.ood_holdout, n_ood // 2)
        permutation = np.random.default_rng(params.seed).permutation(n_ood)
        ood_pos, holdout_ood = np.sort(permutation[n_out:]), np.sort(permutation[:n_out])
        holdout_images, holdout_target = data.ood_images[holdout_ood], data.teacher_ood_logits[holdout_ood]
        holdout_signal, report.holdout_size = "teacher", n_out
    elif stop_early:
        id_pos, holdout_id = holdout_split(data.labels.numpy(), params.holdout_fraction, params.seed)
        holdout_images, holdout_target = data.images[holdout_id], data.labels[holdout_id]
        holdout_signal, report.holdout_size = "labels", len(holdout_id)
    by_target = {"logits": (data.teacher_logits, data.teacher_ood_logits), "features": (data.teacher_features, data.teacher_ood_features)}
    teacher_id, teacher_ood = by_target[objective.target]
    # One table of training images (ID first, then OOD) with the teacher's targets and logits beside them.
    images = torch.cat([data.images[id_pos], data.ood_images[ood_pos]])
    targets = torch.cat([teacher_id[id_pos], teacher_ood[ood_pos]]) if len(teacher_id) else teacher_id
    teacher_logits = torch.cat([data.teacher_logits[id_pos], data.teacher_ood_logits[ood_pos]])
    labels = data.labels[id_pos]
    n_id = len(id_pos)

    prior = class_prior(torch.bincount(data.labels, minlength=data.num_classes).tolist())
    ood_distribution = complementary_distribution(prior)
    weights = class_weights(prior).to(device)
    # The plug-in's joint distillation: methods that do not already distil logits (mir mimics features,
    # bp has no teacher) also match the teacher's logits over ID ∪ OOD, weighted by joint_kd.
    joint_kd = params.joint_kd if use_oe and not (objective.target == "logits" and objective.distill_weight) else 0.0

    trainable = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=params.lr, momentum=0.9, weight_decay=params.weight_decay, nesterov=True)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=params.steps)
    stream = mixed_batches(n_id, len(images) - n_id, params.batch_size, params.id_per_batch, generator)
    # With shots in every batch, ID and OOD images are averaged apart and the OOD mean weighted by
    # ood_weight, so thousands of OOD images cannot drown the few shots; a uniform draw weighs every image alike.
    ood_weight = params.ood_weight if params.id_per_batch else None

    kd_term = functools.partial(distillation_loss, temperature=params.temperature)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")

    report.train_size, report.ood_size = n_id, len(images) - n_id
    report.early_stopping, report.best_step, report.precision = stop_early, params.steps, precision
    if use_oe:
        report.ood_label_distribution = [round(v, 6) for v in ood_distribution.tolist()]
        report.class_weights = [round(v, 6) for v in weights.cpu().tolist()]
    best_loss, best_state, checks_without_gain = float("inf"), None, 0
    window: list[float] = []  # training losses since the last point of the loss curve
    progress = tqdm(range(1, params.steps + 1), desc=f"recover ({params.label})", unit="step", leave=False, disable=None)
    for step in progress:
        student.train()
        batch = next(stream)
        is_id = batch < n_id
        x = images[batch].to(device)
        if device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast:
            outputs, logits = objective.outputs(student, x)
        outputs, logits = outputs.float(), logits.float()
        is_id = is_id.to(device)
        loss = torch.zeros((), device=device)
        if objective.distill_weight:
            loss = loss + objective.distill_weight * _split_mean(objective.distill, outputs, targets[batch].to(device), is_id, ood_weight)
        if joint_kd:
            loss = loss + joint_kd * _split_mean(kd_term, logits, teacher_logits[batch].to(device), is_id, ood_weight)
        if objective.label_weight:
            label_term = torch.zeros((), device=device)
            if is_id.any():
                label_term = label_term + F.cross_entropy(logits[is_id], labels[batch[batch < n_id]].to(device))
            if use_oe and params.lambda_ood and not is_id.all():
                ood_labels = draw_ood_labels(ood_distribution, int((~is_id).sum()), generator).to(device)
                label_term = label_term + params.lambda_ood * weighted_cross_entropy(logits[~is_id], ood_labels, weights)
            loss = loss + objective.label_weight * label_term
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        report.steps_run = step
        step_loss = loss.item()
        progress.set_postfix(loss=f"{step_loss:.3f}")
        window.append(step_loss)
        if step % _LOSS_CURVE_EVERY == 0 or step == params.steps:
            report.loss_curve.append((step, round(sum(window) / len(window), 6)))
            window.clear()

        if holdout_signal != "none" and (step % params.eval_every == 0 or step == params.steps):
            holdout_loss = _holdout_loss(student, holdout_images, holdout_target, holdout_signal, data.num_classes, params.temperature)
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
    for module, momentum in architecture_momenta.items():
        module.momentum = momentum
    return student.cpu().to(memory_format=torch.contiguous_format).eval(), report


# Steps per point of the training-loss curve (MLflow step metric "recovery_loss").
_LOSS_CURVE_EVERY = 10

# BatchNorm momentum recovery trains with at least: a few hundred steps must move the running statistics.
_MIN_BN_MOMENTUM = 0.1


def _follow_short_runs(model: nn.Module) -> dict[nn.Module, float]:
    """Raise every BatchNorm's momentum to at least :data:`_MIN_BN_MOMENTUM`; return the originals.

    torchvision's MobileNets and EfficientNets use 0.01 (tuned for 600-epoch ImageNet runs): in a
    60-step recovery their running statistics would stay the teacher's while the weights move, and
    the student would predict at chance in eval mode.
    """
    originals = {}
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.momentum is not None and module.momentum < _MIN_BN_MOMENTUM:
            originals[module] = module.momentum
            module.momentum = _MIN_BN_MOMENTUM
    return originals
