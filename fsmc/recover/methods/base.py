"""What a logit-level recovery method declares: the weights of its two loss terms."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fsmc.config import RecoverParams


@dataclass(frozen=True)
class LogitMethod:
    """``L = distill_weight * T^2 KL(t || s) + label_weight * CE(s, y)`` (+ the OE terms when plugged in)."""

    name: str
    summary: str
    paper: str
    distill_weight: Callable[[RecoverParams], float]
    label_weight: Callable[[RecoverParams], float]

    @property
    def needs_teacher(self) -> bool:
        """Whether the teacher's soft targets enter the loss at all (for the default params)."""
        return self.distill_weight(RecoverParams()) > 0
