"""What watches a recovery run step by step: the loss curve (MLflow's step metric) and early stopping.

The engine calls :meth:`Callback.on_step` after every optimiser step (a callback returns True to
stop the run) and :meth:`Callback.on_end` once at the end, before the student is handed back.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from fsmc.compress.quantization import observers_frozen
from fsmc.recover.batch_plan import HeldOut
from fsmc.recover.losses import distillation_loss
from fsmc.recover.report import RecoveryReport
from fsmc.runtime import predict_logits


class Callback:
    """A no-op callback; subclasses override what they watch."""

    def on_step(self, step: int, loss: float, student: nn.Module) -> bool:
        """Called after optimiser step ``step`` (1-based) with its loss; True stops the run."""
        return False

    def on_end(self, student: nn.Module) -> None:
        """Called once after the last step."""


class LossCurve(Callback):
    """The mean training loss every ``every`` steps and at the last one, into ``report.loss_curve``."""

    def __init__(self, report: RecoveryReport, steps: int, every: int = 10):
        self.report, self.steps, self.every = report, steps, every
        self.window: list[float] = []

    def on_step(self, step: int, loss: float, student: nn.Module) -> bool:
        self.window.append(loss)
        if step % self.every == 0 or step == self.steps:
            self.report.loss_curve.append((step, round(sum(self.window) / len(self.window), 6)))
            self.window.clear()
        return False


def balanced_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """Cross-entropy with each class weighted by the inverse of its count in ``labels``."""
    counts = torch.bincount(labels, minlength=num_classes).float()
    weights = torch.where(counts > 0, 1.0 / counts.clamp_min(1), torch.zeros_like(counts))
    return float(F.cross_entropy(logits, labels, weight=weights))


class EarlyStopping(Callback):
    """Every ``eval_every`` steps, the held-out signal; the best student is kept, the run stops after ``patience``
    checks without gain. The signal: KD to the teacher on held-out OOD images, or the class-balanced CE on
    held-out shots (:class:`~fsmc.recover.batch_plan.HeldOut`)."""

    def __init__(
        self, held_out: HeldOut, report: RecoveryReport, steps: int, eval_every: int, patience: int, num_classes: int, temperature: float
    ):
        self.held_out, self.report, self.steps = held_out, report, steps
        self.eval_every, self.patience, self.num_classes, self.temperature = eval_every, patience, num_classes, temperature
        self.best_loss, self.best_state, self.checks_without_gain = float("inf"), None, 0

    def held_out_loss(self, student: nn.Module) -> float:
        """The signal on the held-out images (observers frozen: they must not shape int8 ranges)."""
        with observers_frozen(student):
            logits = predict_logits(student, self.held_out.images)
        if self.held_out.signal == "labels":
            return balanced_cross_entropy(logits, self.held_out.target, self.num_classes)
        return float(distillation_loss(logits, self.held_out.target, self.temperature))

    def on_step(self, step: int, loss: float, student: nn.Module) -> bool:
        if step % self.eval_every and step != self.steps:
            return False
        held_out_loss = self.held_out_loss(student)
        self.report.holdout_curve.append((step, round(held_out_loss, 6)))
        if held_out_loss < self.best_loss - 1e-6:
            self.best_loss, self.best_state, self.checks_without_gain = held_out_loss, copy.deepcopy(student.state_dict()), 0
            self.report.best_step = step
            return False
        self.checks_without_gain += 1
        return self.checks_without_gain >= self.patience

    def on_end(self, student: nn.Module) -> None:
        if self.best_state is not None:
            student.load_state_dict(self.best_state)
