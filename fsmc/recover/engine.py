"""The recovery engine: a batch plan, a list of loss terms and callbacks, trained with SGD.

Every gradient-based recovery (bp, kd, mir, cd's fine-tuning, with or without the OE-FSMC
plug-in) is one call of :func:`run_engine`: :mod:`fsmc.recover.loop` configures it from a
method's :class:`~fsmc.recover.loop.Objective` and ``recover.*``. What it owns is what every
run shares: the optimiser (SGD Nesterov, cosine schedule), the device and precision (bf16
autocast where native), the channels-last layout on CPU, the BatchNorm momentum floor, and the
progress bar. Design after the trainer/callback split of Lightning and Keras
(``../shared/notes/style.md`` B.8), kept to what recovery uses.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from tqdm import tqdm

from fsmc.config import RecoverParams
from fsmc.recover.batch_plan import BatchPlan
from fsmc.recover.callbacks import Callback
from fsmc.recover.loss_terms import StepBatch, total_loss
from fsmc.runtime import pick_device, training_precision

# (student, images) -> (outputs compared with the teacher's targets, logits for the label terms)
StudentOutputs = Callable[[nn.Module, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

# BatchNorm momentum recovery trains with at least: a few hundred steps must move the running statistics.
MIN_BN_MOMENTUM = 0.1


@contextmanager
def batchnorm_momentum_floor(model: nn.Module, floor: float = MIN_BN_MOMENTUM) -> Iterator[None]:
    """Every BatchNorm's momentum raised to at least ``floor`` for a while, the originals restored after.

    torchvision's MobileNets and EfficientNets use 0.01 (tuned for 600-epoch ImageNet runs): in a
    60-step recovery their running statistics would stay the teacher's while the weights move, and
    the student would predict at chance in eval mode.
    """
    originals = {}
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.momentum is not None and module.momentum < floor:
            originals[module] = module.momentum
            module.momentum = floor
    try:
        yield
    finally:
        for module, momentum in originals.items():
            module.momentum = momentum


def run_engine(
    student: nn.Module,
    plan: BatchPlan,
    outputs: StudentOutputs,
    terms: list[Callable[[StepBatch], torch.Tensor]],
    callbacks: list[Callback],
    params: RecoverParams,
    generator: torch.Generator,
) -> tuple[nn.Module, int]:
    """Train a copy of ``student`` for up to ``params.steps`` steps; returns (student in eval mode on CPU, steps run).

    Each step draws a batch from ``plan`` (``generator``), runs ``outputs`` under autocast, sums ``terms``
    in float32 and takes one optimiser step; a callback may stop the run early.
    """
    if params.lr <= 0:  # 0 stands for the method's own rate, resolved by fsmc.recover.pipeline.with_method_defaults
        raise ValueError(f"run_engine() needs a positive learning rate, got recover.lr={params.lr}")
    device = pick_device()
    precision = training_precision(params.precision, device)
    student = copy.deepcopy(student).to(device)
    if device.type == "cpu":  # oneDNN's convolutions are faster on NHWC tensors (same numbers, other layout)
        student = student.to(memory_format=torch.channels_last)
    trainable = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=params.lr, momentum=0.9, weight_decay=params.weight_decay, nesterov=True)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=params.steps)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    stream = plan.batches(generator)
    steps_run = 0
    progress = tqdm(range(1, params.steps + 1), desc=f"recover ({params.label})", unit="step", leave=False, disable=None)
    with batchnorm_momentum_floor(student):
        for step in progress:
            student.train()
            positions = next(stream)
            is_id = positions < plan.n_id
            x = plan.images[positions].to(device)
            if device.type == "cpu":
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast:
                student_outputs, logits = outputs(student, x)
            batch = StepBatch(positions, is_id.to(device), student_outputs.float(), logits.float())
            loss = total_loss(terms, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            steps_run = step
            step_loss = loss.item()
            progress.set_postfix(loss=f"{step_loss:.3f}")
            stop = [callback.on_step(step, step_loss, student) for callback in callbacks]
            if any(stop):
                break
        progress.close()
        for callback in callbacks:
            callback.on_end(student)
    return student.cpu().to(memory_format=torch.contiguous_format).eval(), steps_run
