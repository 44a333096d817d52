"""MLflow for the benchmark flow: one parent run per benchmark, one nested run per cell.

Cells are not registered as model versions (a 90-cell grid would bury the
registry); their checkpoints stay in the cell folders, and ``fsmc run`` with a
cell's overrides registers one.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import mlflow
from mlflow.entities import Metric, Param
from prefect import task

from tasks.git_info import git_commit
from tasks.settings import use_tracking_store
from tasks.tracking import experiment_id

_CELL_METRICS = ("student_top1", "student_balanced_acc", "student_minority_acc", "student_head_acc", "student_worst_class_acc",
                 "teacher_top1", "teacher_minority_acc", "teacher_worst_class_acc", "top1_gap", "minority_gap", "worst_class_gap",
                 "student_macs", "student_params", "student_ms", "teacher_ms", "speedup", "wall_seconds")


def _client() -> mlflow.MlflowClient:
    return mlflow.MlflowClient(use_tracking_store())


@task(name="start_benchmark_run", retries=2, retry_delay_seconds=[2, 10])
def start_benchmark_run(preset: str, record: dict) -> str:
    """Create the benchmark's parent run (experiment ``fsmc-benchmark``); return its id."""
    client = _client()
    run = client.create_run(
        experiment_id("fsmc-benchmark"),
        run_name=f"benchmark-{preset}",
        tags={"preset": preset, "git_commit": git_commit(), "only": " ".join(record["only"]) or "(full grid)"},
    )
    client.log_batch(run.info.run_id, params=[Param("preset", preset), Param("cells", str(record["cells"]))],
                     metrics=[Metric("wall_seconds", record["wall_seconds"], int(time.time() * 1000), 0)])
    return run.info.run_id


@task(name="log_benchmark", retries=2, retry_delay_seconds=[2, 10])
def log_benchmark(parent_id: str, rows: list[dict], summary: list[dict], artifacts: list[Path], preset: str) -> None:
    """One nested run per cell (labels as params, metrics, per-class accuracy); the results on the parent."""
    client = _client()
    experiment_id = client.get_run(parent_id).info.experiment_id
    now = int(time.time() * 1000)
    for row in rows:
        name = " ".join(f"{k}={v}" for k, v in row["labels"].items())
        child = client.create_run(experiment_id, run_name=name, tags={"mlflow.parentRunId": parent_id, "preset": preset,
                                                                       "fsmc.cell_id": row["cell_id"], "reused": str(row["all_reused"]).lower()})
        metrics = [Metric(key, float(row[key]), now, 0) for key in _CELL_METRICS if row.get(key) is not None and not math.isnan(float(row[key]))]
        metrics += [Metric(f"student.class_acc.{c}", float(v), now, 0) for c, v in zip(row["classes"], row["student_per_class"], strict=True)]
        params = [Param(k, v) for k, v in row["labels"].items()] + [Param("overrides", " ".join(row["overrides"])[:6000])]
        client.log_batch(child.info.run_id, metrics=metrics, params=params)
        client.set_terminated(child.info.run_id)
    for path in artifacts:
        client.log_artifact(parent_id, str(path))
    client.set_tag(parent_id, "summary_rows", str(len(summary)))
    client.set_terminated(parent_id)
