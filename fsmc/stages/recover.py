"""Stage ``recover``: few-sample recovery of the compressed student with ``recover.method`` (+ ``oe``)."""

from __future__ import annotations

import dataclasses

import torch

from fsmc.atomic import write_json
from fsmc.compress.pruning import KeptChannels
from fsmc.config import Params
from fsmc.data.images import to_tensor
from fsmc.models.checkpoint import load_checkpoint, save_checkpoint
from fsmc.recover.loop import RecoveryData
from fsmc.recover.methods import METHODS, RecoveryContext
from fsmc.recover.pipeline import recover_student
from fsmc.stages.reading import few_shot_set, ood_set
from fsmc.teacher_outputs import images_key, teacher_outputs
from fsmc.workspace import Workspace


def _teacher_outputs(params: Params, ws: Workspace, with_features: bool) -> tuple:
    """The few-shot and OOD sets and the teacher's (cached) outputs on both."""
    teacher, _, _ = load_checkpoint(ws.teacher_model)
    dataset, few_frame, few = few_shot_set(params, ws)
    ood_frame, ood = ood_set(params, ws)
    images, ood_images = to_tensor(few.images, few.pixel_max), to_tensor(ood.images, ood.pixel_max)
    few_out, few_hit = teacher_outputs(ws.teacher_model, teacher, images, images_key(list(few_frame["sha256"])), with_features)
    ood_out, ood_hit = teacher_outputs(ws.teacher_model, teacher, ood_images, images_key(list(ood_frame["sha256"])), with_features)
    return teacher, dataset, few, images, ood_images, few_out, ood_out, {"few_shot": few_hit, "ood": ood_hit}


def warm_teacher_outputs(params: Params, ws: Workspace, with_features: bool) -> None:
    """Compute the teacher's outputs on the few-shot and OOD sets into the cache (benchmark cells share them)."""
    _teacher_outputs(params, ws, with_features)


def run(params: Params, ws: Workspace) -> dict:
    """Write ``recover/model.pt`` and ``recover/summary.json``; return the summary."""
    student, spec, meta = load_checkpoint(ws.pruned_model)
    features = METHODS[params.recover.method].needs_features
    teacher, dataset, few, images, ood_images, few_out, ood_out, hits = _teacher_outputs(params, ws, features)
    data = RecoveryData(
        images=images,
        labels=torch.from_numpy(few.labels),
        ood_images=ood_images,
        num_classes=dataset.num_classes,
        teacher_logits=few_out["logits"],
        teacher_ood_logits=ood_out["logits"].reshape(len(ood_images), dataset.num_classes),
        teacher_features=few_out["features"],
        teacher_ood_features=ood_out["features"],
    )
    context = RecoveryContext(teacher, data, KeptChannels.from_json(meta.get("kept_channels")))
    recovered, report, out_meta = recover_student(student, meta, context, params.recover, images[:1])
    save_checkpoint(ws.student_model, recovered, spec, meta=out_meta)
    summary = dataclasses.asdict(report)
    write_json(ws.recover_summary, summary)
    # Cache hits are reported to the caller but kept out of the file, so reruns stay byte-identical.
    return {**summary, "teacher_outputs_cached": hits}
