"""What a target can ask of a teacher, known before the search spends its budget.

Two refusals need the teacher: a speed-up beyond what removing every prunable channel could give, and a budget
shorter than one candidate's short recovery. Both are estimates that err on the generous side, so a refused
target is one no search could meet.
"""

from __future__ import annotations

import copy
import time

import torch

from fsmc.compress.blocks import droppable_blocks
from fsmc.compress.pruning import GLOBAL_MAX_RATIO, model_cost, prune_channels
from fsmc.config import Params
from fsmc.errors import FsmcError
from fsmc.models.normalized import NormalizedClassifier
from fsmc.tuning.candidates import short_steps

# int8 in the fastest runtime measured ran at most ~4x its fp32 (issue 32: x1.9 at batch 1, x3.6 at batch 64);
# the ceiling on a speed-up is this times what the MACs of the most pruned student allow.
INT8_CEILING = 4.0


def is_residual(teacher: NormalizedClassifier, example: torch.Tensor) -> bool:
    """Whether block dropping applies: the teacher has residual blocks whose output has their input's shape."""
    return bool(droppable_blocks(teacher, example))


def speedup_ceiling(teacher: NormalizedClassifier, example: torch.Tensor) -> float:
    """The most any candidate could speed the teacher up: every prunable layer at the largest ratio, times int8's best."""
    pruned, _ = prune_channels(teacher, example, GLOBAL_MAX_RATIO)
    return INT8_CEILING * model_cost(teacher, example).macs / model_cost(pruned, example).macs


def seconds_per_step(teacher: NormalizedClassifier, images: torch.Tensor, batch_size: int) -> float:
    """Wall time of one forward and backward pass of ``teacher`` on ``batch_size`` images (after a warm-up)."""
    batch = images.repeat(batch_size // len(images) + 1, 1, 1, 1)[:batch_size]
    model = copy.deepcopy(teacher).train()  # a copy: training-mode passes move the BatchNorm statistics
    for _ in range(2):  # the first pass pays for allocation and kernel choice
        started = time.perf_counter()
        model(batch).sum().backward()
        elapsed = time.perf_counter() - started
        model.zero_grad(set_to_none=True)
    return elapsed


def check_feasible(params: Params, teacher: NormalizedClassifier, images: torch.Tensor) -> None:
    """Refuse a speed-up target beyond :func:`speedup_ceiling`, or a budget shorter than one short candidate.

    Raises:
        FsmcError: naming the value and what would be valid.
    """
    t = params.target
    if t.speedup:
        ceiling = speedup_ceiling(teacher, images[:1])
        if t.speedup > ceiling:
            raise FsmcError(
                f"target.speedup={t.speedup:g} is beyond what this teacher allows: removing {GLOBAL_MAX_RATIO:.0%} of every "
                f"prunable layer's channels and running in int8 would give about x{ceiling:.1f} at most. Ask for a "
                f"speed-up below x{ceiling:.1f}, or compress a larger teacher."
            )
    steps = short_steps(params)
    estimate = steps * 2 * seconds_per_step(teacher, images, params.recover.batch_size)  # student step + evaluation, roughly
    if t.budget_minutes * 60 < estimate:
        raise FsmcError(
            f"target.budget_minutes={t.budget_minutes:g} is too short for one candidate: its short recovery ({steps} steps) "
            f"takes about {estimate / 60:.1f} minutes on this machine. Give at least {max(1, round(estimate / 60 * 4))} "
            "minutes (a few candidates), or lower recover.steps."
        )
