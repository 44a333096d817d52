"""The pipeline run in-process, stage after stage through the stage cache (benchmarks, tests, DVC-free scripts).

The ``compress`` Prefect flow runs the same stages in the same order, each as a Prefect task.
"""

from __future__ import annotations

from fsmc.config import Params
from fsmc.stage_cache import run_stage
from fsmc.stages import CACHED_PIPELINE, STAGES
from fsmc.workspace import Workspace


def run_pipeline(params: Params, ws: Workspace, reuse: bool = True, stop_before: str | None = None) -> list[str]:
    """Record the inputs, then run every cached stage in order into ``ws``.

    Args:
        params: the validated parameters.
        ws: the run folder receiving every stage's outputs.
        reuse: restore stages whose inputs are unchanged from the stage cache.
        stop_before: a stage name: run only the stages before it (e.g. ``"recover"`` to prepare a
            cell whose recovery a benchmark varies).

    Returns:
        The stages restored from the stage cache, in order.
    """
    if stop_before is not None and stop_before not in CACHED_PIPELINE:
        raise ValueError(f"stop_before={stop_before!r} is not one of {CACHED_PIPELINE}")
    stages = CACHED_PIPELINE[: CACHED_PIPELINE.index(stop_before)] if stop_before else CACHED_PIPELINE
    STAGES["record_inputs"](params, ws)
    reused = []
    for stage in stages:
        _, hit = run_stage(stage, STAGES[stage], params, ws, reuse)
        if hit:
            reused.append(stage)
    return reused
