"""Distillation to a smaller architecture: the student of ``scheme=distill``.

* ``resnet20/32/44`` under a deeper CIFAR ResNet teacher: fewer blocks per stage, the
  same widths (so the teacher's head fits the student's features: mir applies).
  ``student_init=teacher`` copies the stem, the head and, per stage, the first block
  (the one with the stride/shortcut) plus evenly spaced later blocks: block dropping
  as in PRACTISE, with a fixed spacing instead of PRACTISE's recoverability ranking.
* ``small-cnn-half`` under the small CNN: half the width of the first two conv blocks,
  the feature width kept; ``student_init=teacher`` is the L1 channel-pruned teacher.

* a user's torchvision teacher: ``resnet34 -> resnet18`` (block dropping over the four
  stages, as above; mir applies), ``resnet50 -> resnet18/34`` and ``mobilenet_v3_large ->
  mobilenet_v3_small`` (other block types: ``student_init=scratch`` only, narrower features: kd/bp).

``student_init=scratch`` initialises the student with torch's defaults (seed 0).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from fsmc.compress.pruning import prune_channels
from fsmc.config import TORCHVISION_PREFIX
from fsmc.errors import FsmcError
from fsmc.models.normalized import NormalizedClassifier
from fsmc.models.zoo import build


def student_spec(teacher_spec: dict[str, Any], student: str) -> dict[str, Any]:
    """The builder spec of ``student`` under a teacher built from ``teacher_spec``."""
    spec = copy.deepcopy(teacher_spec)
    if student.startswith("resnet") and spec["arch"] == "cifar-resnet":
        spec["kwargs"]["depth"] = int(student.removeprefix("resnet"))
        return spec
    if student.startswith(TORCHVISION_PREFIX) and spec["arch"] == "torchvision":
        spec["kwargs"]["name"] = student.removeprefix(TORCHVISION_PREFIX)
        return spec
    if student == "small-cnn-half" and spec["arch"] == "small-cnn":
        widths = spec["kwargs"].get("widths", (32, 64, 64))
        spec["kwargs"]["widths"] = [widths[0] // 2, widths[1] // 2, widths[2]]
        return spec
    raise FsmcError(f"compress.student={student!r} is not a smaller version of architecture {spec['arch']!r}.")


def kept_blocks(teacher_blocks: int, student_blocks: int) -> list[int]:
    """Which teacher blocks of a stage the student keeps: block 0 and evenly spaced others."""
    return sorted({int(round(i)) for i in np.linspace(0, teacher_blocks - 1, student_blocks)})


def smaller_student(
    teacher: NormalizedClassifier, teacher_spec: dict[str, Any], student: str, init: str, example: torch.Tensor
) -> tuple[NormalizedClassifier, dict[str, Any]]:
    """The smaller student (eval mode) and its spec."""
    spec = student_spec(teacher_spec, student)
    if init == "scratch":
        with torch.random.fork_rng():  # seeded init without touching the caller's random state
            torch.manual_seed(0)
            return build(spec).eval(), spec
    if spec["arch"] == "small-cnn":
        pruned, _ = prune_channels(teacher, example, 0.5)
        return pruned, spec
    model = build(spec)
    if spec["arch"] == "torchvision":  # a ResNet of the same block type (validation refused the others)
        source, target, prefix, stages = teacher.net.model, model.net.model, "net.model.", ("layer1", "layer2", "layer3", "layer4")
    else:
        source, target, prefix, stages = teacher.net, model.net, "net.", ("layer1", "layer2", "layer3")
    state = {k: v for k, v in teacher.state_dict().items() if not k.startswith(f"{prefix}layer")}
    for stage in stages:
        teacher_stage, student_stage = getattr(source, stage), getattr(target, stage)
        for position, block in enumerate(kept_blocks(len(teacher_stage), len(student_stage))):
            for key, value in teacher_stage[block].state_dict().items():
                state[f"{prefix}{stage}.{position}.{key}"] = value
    model.load_state_dict(state, strict=True)
    return model.eval(), spec
