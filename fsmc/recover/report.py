"""What a recovery run reports: steps, sizes, the plug-in's state, loss and held-out curves, notes."""

from __future__ import annotations

from dataclasses import dataclass, field


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
