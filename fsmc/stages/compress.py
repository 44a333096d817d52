"""Stage ``compress``: structured L1 channel pruning of the teacher."""

from __future__ import annotations

import dataclasses

from fsmc.atomic import write_json
from fsmc.compress.pruning import channel_counts, model_cost, prune_channels
from fsmc.config import Params
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.models.checkpoint import load_checkpoint, save_checkpoint
from fsmc.stages.workspace import Workspace


def run(params: Params, ws: Workspace) -> dict:
    """Write ``compress/model.pt`` and ``compress/summary.json`` (MACs and params of both models)."""
    teacher, spec, _ = load_checkpoint(ws.teacher_model)
    dataset = load_dataset(params.data)
    example = to_tensor(dataset.train.images[:1], dataset.train.pixel_max)
    student = prune_channels(teacher, example, params.compress.ratio, params.compress.importance)
    teacher_cost, student_cost = model_cost(teacher, example), model_cost(student, example)
    save_checkpoint(ws.pruned_model, student, spec, meta={"scheme": "channel-pruning", **dataclasses.asdict(params.compress)})
    summary = {
        "scheme": "channel-pruning",
        "importance": params.compress.importance,
        "ratio": params.compress.ratio,
        "teacher": dataclasses.asdict(teacher_cost),
        "student": dataclasses.asdict(student_cost),
        "macs_ratio": student_cost.macs / teacher_cost.macs,
        "params_ratio": student_cost.params / teacher_cost.params,
        "conv_out_channels": channel_counts(teacher, student),
    }
    write_json(ws.compress_summary, summary)
    return summary
