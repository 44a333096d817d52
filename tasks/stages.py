"""One Prefect task per pipeline stage, each calling the stage's pure worker."""

from __future__ import annotations

from prefect import task

from fsmc.config import Params
from fsmc.stages import compress, curate_ood, evaluate, record_inputs, recover, sample_few_shot, teacher, validate
from fsmc.stages.workspace import Workspace


@task(name="record_inputs")
def record_inputs_task(params: Params, ws: Workspace) -> dict:
    """Verify and record the raw input files (relative path + sha256)."""
    return record_inputs.run(params, ws)


@task(name="sample_few_shot")
def sample_few_shot_task(params: Params, ws: Workspace) -> dict:
    """Draw the imbalanced few-shot set (manifest + summary)."""
    return sample_few_shot.run(params, ws)


@task(name="curate_ood")
def curate_ood_task(params: Params, ws: Workspace) -> dict:
    """Curate the OOD pool (manifest + summary)."""
    return curate_ood.run(params, ws)


@task(name="validate")
def validate_task(params: Params, ws: Workspace) -> dict:
    """Great Expectations suites on both manifests; fails the flow on any failed expectation."""
    return validate.run(params, ws)


@task(name="teacher")
def teacher_task(params: Params, ws: Workspace) -> dict:
    """The teacher checkpoint (cached across runs by recipe and code)."""
    return teacher.run(params, ws)


@task(name="compress")
def compress_task(params: Params, ws: Workspace) -> dict:
    """Structured channel pruning; MACs and params of teacher and student."""
    return compress.run(params, ws)


@task(name="recover")
def recover_task(params: Params, ws: Workspace) -> dict:
    """Few-sample recovery with recover.method (+ the OE-FSMC plug-in)."""
    return recover.run(params, ws)


@task(name="evaluate")
def evaluate_task(params: Params, ws: Workspace) -> dict:
    """Per-class evaluation of teacher and student on the test split."""
    return evaluate.run(params, ws)
