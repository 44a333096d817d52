"""Stage ``compress``: apply ``compress.scheme`` to the teacher (``fsmc.compress.schemes``)."""

from __future__ import annotations

import dataclasses

import torch

from fsmc.atomic import write_json
from fsmc.compress.pruning import channel_counts, model_cost
from fsmc.compress.schemes import SchemeInputs, compress
from fsmc.config import Params
from fsmc.data.images import to_tensor
from fsmc.models.checkpoint import load_checkpoint, save_checkpoint
from fsmc.models.int8_graph import is_quantized
from fsmc.stages.reading import few_shot_set, ood_set
from fsmc.workspace import Workspace


def run(params: Params, ws: Workspace) -> dict:
    """Write ``compress/model.pt`` and ``compress/summary.json`` (cost of both models, what changed)."""
    teacher, spec, _ = load_checkpoint(ws.teacher_model)
    dataset, _, few = few_shot_set(params, ws)
    _, ood = ood_set(params, ws)
    images = to_tensor(few.images, few.pixel_max)
    inputs = SchemeInputs(
        teacher_name=params.data.teacher,
        spec=spec,
        example=images[:1],
        images=images,
        labels=torch.from_numpy(few.labels),
        ood_images=to_tensor(ood.images, ood.pixel_max),
        num_classes=dataset.num_classes,
    )
    result = compress(teacher, params.compress, inputs)
    save_checkpoint(ws.pruned_model, result.model, result.spec, meta=result.meta)
    teacher_cost = model_cost(teacher, inputs.example)
    # An int8 model does the float model's multiply-accumulates, in int8; torch-pruning cannot trace it.
    student_cost = teacher_cost if is_quantized(result.model) else model_cost(result.model, inputs.example)
    summary = {
        "scheme": params.compress.scheme,
        "params": dataclasses.asdict(params.compress),
        "teacher": {**dataclasses.asdict(teacher_cost), "bytes": ws.teacher_model.stat().st_size},
        "student": {**dataclasses.asdict(student_cost), "bytes": ws.pruned_model.stat().st_size},
        "macs_ratio": student_cost.macs / teacher_cost.macs,
        "params_ratio": student_cost.params / teacher_cost.params,
        **result.summary,
    }
    if "kept_channels" in result.meta:  # channel pruning (alone, or before int8)
        summary["conv_out_channels"] = channel_counts(teacher, result.model)
    summary["bytes_ratio"] = summary["student"]["bytes"] / summary["teacher"]["bytes"]
    write_json(ws.compress_summary, summary)
    return summary
