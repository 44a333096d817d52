"""Stage ``recover``: few-sample recovery of the pruned student (``kd`` or ``oe-kd``)."""

from __future__ import annotations

import dataclasses

import torch

from fsmc.atomic import write_json
from fsmc.config import Params
from fsmc.data.images import to_tensor
from fsmc.models.checkpoint import load_checkpoint, save_checkpoint
from fsmc.recover.loop import RecoveryData, recover
from fsmc.stages.inputs import few_shot_set, ood_set
from fsmc.stages.workspace import Workspace


def run(params: Params, ws: Workspace) -> dict:
    """Write ``recover/model.pt`` and ``recover/summary.json``; return the summary."""
    teacher, _, _ = load_checkpoint(ws.teacher_model)
    student, spec, meta = load_checkpoint(ws.pruned_model)
    dataset, _, few = few_shot_set(params, ws)
    _, ood = ood_set(params, ws)
    data = RecoveryData(
        images=to_tensor(few.images, few.pixel_max),
        labels=torch.from_numpy(few.labels),
        ood_images=to_tensor(ood.images, ood.pixel_max),
        num_classes=dataset.num_classes,
    )
    recovered, report = recover(student, teacher, data, params.recover)
    save_checkpoint(ws.student_model, recovered, spec, meta={**meta, "recovery": params.recover.method})
    summary = dataclasses.asdict(report)
    write_json(ws.recover_summary, summary)
    return summary
