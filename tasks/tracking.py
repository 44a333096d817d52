"""MLflow: one run per pipeline run, with params, per-class metrics, artifacts and the registered student."""

from __future__ import annotations

import logging
import time
import warnings

import mlflow
import pandas as pd
from mlflow.entities import Metric
from prefect import task

from fsmc.atomic import read_json, sha256_file
from fsmc.config import Params
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.evaluation import ACCURACY_METRICS, COST_METRICS
from fsmc.models.checkpoint import load_checkpoint
from fsmc.models.user_teacher import registry_teacher_record
from fsmc.workspace import Workspace
from tasks.git_info import git_commit
from tasks.model_registry import log_model_version, tag_version
from tasks.run_summary import describe_run, run_name
from tasks.settings import artifact_root, use_tracking_store
from tasks.shipping import latency_metrics, latency_table

# "Creating initial MLflow database tables..." on every new project store: plumbing, not news to a user.
for _plumbing in ("mlflow.store.db.utils", "alembic.runtime.migration"):
    logging.getLogger(_plumbing).setLevel(logging.WARNING)

SUMMARY_METRICS = (*ACCURACY_METRICS, *COST_METRICS)


def experiment_id(name: str) -> str:
    """The id of the MLflow experiment ``name``, created (artifacts under mlruns/ for a local store) if missing."""
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    # A local store keeps artifacts beside it under mlruns/; a server decides for itself.
    local = mlflow.get_tracking_uri().startswith(("sqlite:", "file:"))
    return mlflow.create_experiment(name, artifact_location=artifact_root() if local else None)


def _already_logged(experiment: str, run_uid: str, model_name: str) -> dict | None:
    """Make logging idempotent under retries: reuse a finished attempt, set aside a partial one.

    A run folder is logged once: a finished MLflow run carrying its ``fsmc.run_uid`` with a registered
    version is returned as is; an attempt that died half-way is soft-deleted (MLflow keeps it restorable)
    so the retry leaves exactly one run and one version.
    """
    if not run_uid:
        return None
    client = mlflow.MlflowClient()
    for previous in client.search_runs([experiment], filter_string=f"tags.`fsmc.run_uid` = '{run_uid}'"):
        versions = client.search_model_versions(f"run_id='{previous.info.run_id}'")
        if previous.info.status == "FINISHED" and versions:
            version = max(versions, key=lambda v: int(v.version))
            return {"run_id": previous.info.run_id, "name": model_name, "version": str(version.version), "experiment_id": experiment}
        client.delete_run(previous.info.run_id)
    return None


def _log_dataset_inputs(ws: Workspace) -> None:
    """The few-shot and OOD manifests as the run's dataset inputs (name, digest, source) in MLflow's view."""
    for name, path, context in (("few_shot", ws.few_shot_manifest, "training"), ("ood", ws.ood_manifest, "ood")):
        frame = pd.read_csv(path)
        with warnings.catch_warnings():
            # MLflow muses about the source's kind and integer columns: neither concerns a manifest.
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_pandas(frame, source=str(path.resolve()), name=name)
            mlflow.log_input(dataset, context=context)


def _log_recovery_curves(client: mlflow.MlflowClient, run_id: str, ws: Workspace) -> None:
    """Recovery's training loss (and held-out loss, with early stopping) as step metrics: the run's charts."""
    summary = read_json(ws.recover_summary) if ws.recover_summary.is_file() else {}
    now = int(1000 * time.time())
    points = [Metric("recovery_loss", value, now, step) for step, value in summary.get("loss_curve", [])]
    points += [Metric("recovery_holdout_loss", value, now, step) for step, value in summary.get("holdout_curve", [])]
    for start in range(0, len(points), 1000):  # MLflow takes at most 1000 metrics per batch
        client.log_batch(run_id, metrics=points[start : start + 1000])


def _metrics(evaluation: dict) -> dict[str, float]:
    names = evaluation["classes"]
    metrics: dict[str, float] = {}
    for role in ("teacher", "student"):
        result = evaluation[role]
        metrics.update({f"{role}.{key}": float(result[key]) for key in SUMMARY_METRICS})
        metrics.update({f"{role}.class_acc.{name}": float(v) for name, v in zip(names, result["per_class"])})
    student = evaluation["student"]
    metrics.update({f"student.class_gap.{name}": float(v) for name, v in zip(names, student["per_class_gap"])})
    metrics["student.top1_gap"] = float(student["top1_gap"])
    metrics["student.worst_class_gap"] = float(student["worst_class_gap"])
    return metrics


def log_run(params: Params, ws: Workspace, wall_seconds: float, shipped: dict | None = None) -> dict:
    """Log the finished pipeline in ``ws`` as one MLflow run and register its student.

    ``shipped`` (:func:`fsmc.shipping.ship.ship`'s report) adds the latency metrics and table, the runtime tags,
    and makes the registered version's pyfunc run the shipped runtime.

    Returns:
        ``{"run_id", "name", "version", "experiment_id"}`` of the run and the registered model version.
    """
    use_tracking_store()
    evaluation = read_json(ws.metrics)
    student, _, _ = load_checkpoint(ws.student_model)
    dataset = load_dataset(params.data)
    example = to_tensor(dataset.test.images[:4], dataset.test.pixel_max)
    tags = {
        "teacher": params.data.teacher,
        "dataset": params.data.dataset,
        "method": params.recover.label,
        "oe": str(params.recover.oe).lower(),
        "scheme": params.compress.scheme,
        "few_shot_manifest_sha256": sha256_file(ws.few_shot_manifest),
        "ood_manifest_sha256": sha256_file(ws.ood_manifest),
        "git_commit": git_commit(),
        "fsmc.run_uid": read_json(ws.run_record)["run_uid"] if ws.run_record.is_file() else "",
    }
    # Lineage: which weights file the teacher came from (zoo file or a user's state dict), by content.
    teacher_weights = read_json(ws.input_sources).get("teacher_weights") if ws.input_sources.is_file() else None
    if teacher_weights:
        tags |= {"teacher_weights": teacher_weights["file"], "teacher_weights_sha256": teacher_weights["sha256"]}
    if params.data.registry_teacher and (lineage := registry_teacher_record(params.data.teacher)):
        tags |= {"teacher_registered_model": lineage["name"], "teacher_model_version": lineage["version"]}
        tags["teacher_format"] = lineage.get("format", "fsmc-checkpoint")
    if shipped is not None:
        tags |= {"ship.runtime": shipped["choice"]["runtime"], "ship.precision": shipped["choice"]["precision"],
                 "ship.threads": str(shipped["choice"]["threads"]), "ship.cpu_flags": shipped["latency"]["cpu_flags"],
                 "ship.teacher_fastest_runtime": shipped["latency"]["teacher_fastest_runtime"]}  # fmt: skip
    if params.teacher.trust_pickle:  # the opt-in is part of the run's record, whether or not a pickle needed it
        tags["fsmc.trust_pickle"] = "true"
    run_experiment = experiment_id(params.tracking.experiment)
    done = _already_logged(run_experiment, tags["fsmc.run_uid"], params.tracking.registered_model)
    if done is not None:
        tag_version(done["name"], done["version"], tags)  # an attempt may have died before its tags
        return done
    description = describe_run(params, evaluation) + (f"\n{latency_table(shipped)}" if shipped is not None else "")
    # The run spans the pipeline (it is created when logging starts, after the work): its start is the flow's.
    client = mlflow.MlflowClient()
    created = client.create_run(
        run_experiment,
        start_time=int(1000 * (time.time() - wall_seconds)),
        tags={**tags, "mlflow.note.content": description},
        run_name=run_name(params),
    )
    with mlflow.start_run(run_id=created.info.run_id) as run:
        mlflow.log_params(params.flat())
        mlflow.log_metrics({**_metrics(evaluation), **(latency_metrics(shipped) if shipped else {}), "wall_seconds": wall_seconds})
        _log_dataset_inputs(ws)
        _log_recovery_curves(client, run.info.run_id, ws)
        mlflow.log_artifacts(str(ws.root), artifact_path="pipeline")
        _, version = log_model_version(
            student, example, dataset.classes, params.tracking.registered_model, tags, description,
            shipped=(ws.shipped_model, shipped["choice"]) if shipped is not None else None,
        )  # fmt: skip
    return {"run_id": run.info.run_id, "name": params.tracking.registered_model, "version": version, "experiment_id": run_experiment}


@task(name="log_to_mlflow", retries=2, retry_delay_seconds=[2, 10])
def log_run_task(params: Params, ws: Workspace, wall_seconds: float, shipped: dict | None = None) -> dict:
    """Log and register (retried: the tracking server may be briefly unreachable)."""
    return log_run(params, ws, wall_seconds, shipped)
