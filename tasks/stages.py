"""One Prefect task per pipeline stage, each calling the stage's pure worker.

Every stage but ``record_inputs`` (which hashes the raw inputs the others are
keyed on) goes through the stage cache (:mod:`fsmc.stage_cache`): a rerun after
a crash, or another run with the same inputs, restores the finished stages'
files instead of recomputing them. Each task returns ``(result, reused)``.
"""

from __future__ import annotations

from prefect import task
from prefect.logging import get_run_logger

from fsmc.config import Params
from fsmc.stage_cache import run_stage
from fsmc.stages import STAGES
from fsmc.workspace import Workspace


def _cached(stage: str, params: Params, ws: Workspace, reuse: bool) -> tuple[dict, bool]:
    result, reused = run_stage(stage, STAGES[stage], params, ws, reuse)
    if reused:
        get_run_logger().info("%s: finished outputs with the same inputs found in the stage cache; reused", stage)
    return result, reused


@task(name="record_inputs")
def record_inputs_task(params: Params, ws: Workspace) -> dict:
    """Verify and record the raw input files (relative path + sha256)."""
    return STAGES["record_inputs"](params, ws)


@task(name="sample_few_shot")
def sample_few_shot_task(params: Params, ws: Workspace, reuse: bool = True) -> tuple[dict, bool]:
    """Draw the imbalanced few-shot set (manifest + summary)."""
    return _cached("sample_few_shot", params, ws, reuse)


@task(name="curate_ood")
def curate_ood_task(params: Params, ws: Workspace, reuse: bool = True) -> tuple[dict, bool]:
    """Curate the OOD pool (manifest + summary)."""
    return _cached("curate_ood", params, ws, reuse)


@task(name="validate")
def validate_task(params: Params, ws: Workspace, reuse: bool = True) -> tuple[dict, bool]:
    """Great Expectations suites on both manifests; fails the flow on any failed expectation."""
    return _cached("validate", params, ws, reuse)


@task(name="teacher")
def teacher_task(params: Params, ws: Workspace, reuse: bool = True) -> tuple[dict, bool]:
    """The teacher checkpoint (cached across runs by recipe and code)."""
    return _cached("teacher", params, ws, reuse)


@task(name="compress")
def compress_task(params: Params, ws: Workspace, reuse: bool = True) -> tuple[dict, bool]:
    """Apply compress.scheme; MACs and params of teacher and student."""
    return _cached("compress", params, ws, reuse)


@task(name="recover")
def recover_task(params: Params, ws: Workspace, reuse: bool = True) -> tuple[dict, bool]:
    """Few-sample recovery with recover.method (+ the OE-FSMC plug-in)."""
    return _cached("recover", params, ws, reuse)


@task(name="evaluate")
def evaluate_task(params: Params, ws: Workspace, reuse: bool = True) -> tuple[dict, bool]:
    """Per-class evaluation of teacher and student on the test split."""
    return _cached("evaluate", params, ws, reuse)


STAGE_TASKS = {
    "sample_few_shot": sample_few_shot_task,
    "teacher": teacher_task,
    "curate_ood": curate_ood_task,
    "validate": validate_task,
    "compress": compress_task,
    "recover": recover_task,
    "evaluate": evaluate_task,
}
