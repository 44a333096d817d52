"""Stage ``recover``: few-sample recovery of the compressed student with ``recover.method`` (+ ``oe``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from fsmc.atomic import write_json
from fsmc.compress.pruning import KeptChannels
from fsmc.config import METHOD_DECLARATIONS, Params
from fsmc.models.checkpoint import load_checkpoint, save_checkpoint
from fsmc.recover.methods import RecoveryContext
from fsmc.recover.pipeline import recover_student
from fsmc.stages.reading import recovery_inputs
from fsmc.workspace import Workspace


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch runs on ``count`` threads inside the block (0: as it was), and as it was after it."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def warm_teacher_outputs(params: Params, ws: Workspace, with_features: bool) -> None:
    """Compute the teacher's outputs on the few-shot and OOD sets into the cache (benchmark cells share them)."""
    recovery_inputs(params, ws, with_features)


def run(params: Params, ws: Workspace) -> dict:
    """Write ``recover/model.pt`` and ``recover/summary.json``; return the summary."""
    student, spec, meta = load_checkpoint(ws.pruned_model)
    features = METHOD_DECLARATIONS[params.recover.method].needs_features
    inputs = recovery_inputs(params, ws, features)
    context = RecoveryContext(inputs.teacher, inputs.data, KeptChannels.from_json(meta.get("kept_channels")))
    with torch_threads(params.recover.threads):
        recovered, report, out_meta = recover_student(student, meta, context, params.recover, inputs.data.images[:1])
    save_checkpoint(ws.student_model, recovered, spec, meta=out_meta)
    summary = dataclasses.asdict(report)
    write_json(ws.recover_summary, summary)
    # Cache hits are reported to the caller but kept out of the file, so reruns stay byte-identical.
    return {**summary, "teacher_outputs_cached": inputs.cache_hits}
