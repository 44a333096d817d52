"""MLflow: one run per pipeline run, with params, per-class metrics, artifacts and the registered student."""

from __future__ import annotations

import logging
import subprocess
import time
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from prefect import task

import fsmc
from fsmc.atomic import read_json, sha256_file
from fsmc.config import Params
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.evaluation import ACCURACY_METRICS, COST_METRICS
from fsmc.models.checkpoint import load_checkpoint
from fsmc.models.user_teacher import registry_teacher_record
from fsmc.workspace import Workspace
from tasks.settings import artifact_root, use_tracking_store

# "Creating initial MLflow database tables..." on every new project store: plumbing, not news to a user.
for _plumbing in ("mlflow.store.db.utils", "alembic.runtime.migration"):
    logging.getLogger(_plumbing).setLevel(logging.WARNING)

SUMMARY_METRICS = (*ACCURACY_METRICS, *COST_METRICS)


def git_commit() -> str:
    """The git commit of the fsmc code that ran (``+dirty`` with local changes), or ``unknown`` outside a checkout."""
    code = Path(fsmc.__file__).parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=code, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "."], cwd=code.parent, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}+dirty" if dirty else commit


def experiment_id(name: str) -> str:
    """The id of the MLflow experiment ``name``, created (artifacts under mlruns/ for a local store) if missing."""
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    # A local store keeps artifacts beside it under mlruns/; a server decides for itself.
    local = mlflow.get_tracking_uri().startswith(("sqlite:", "file:"))
    return mlflow.create_experiment(name, artifact_location=artifact_root() if local else None)


def tag_version(name: str, version: str, tags: dict[str, str]) -> None:
    """Set ``tags`` on registered model version ``name`` / ``version``."""
    client = mlflow.MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


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


def run_name(params: Params) -> str:
    """What the run did, readable in the runs list: dataset, teacher, scheme, method."""
    return f"{params.data.dataset} {params.data.teacher} {params.compress.scheme} {params.recover.label}"


def _description(params: Params, evaluation: dict) -> str:
    """A reviewer's summary (Markdown) for the run and the registered version: no artifact needs opening."""
    teacher, student = evaluation["teacher"], evaluation["student"]
    minority = ", ".join(evaluation["minority_class_names"])
    return (
        f"**{params.data.teacher}** on **{params.data.dataset}** compressed by **{params.compress.scheme}** "
        f"(ratio {params.compress.ratio}) and recovered by **{params.recover.label}** from "
        f"{sum(evaluation['few_shot_counts'])} shots (k_max {params.sample_few_shot.k_max}, "
        f"rho {params.sample_few_shot.imbalance_ratio}).\n\n"
        f"| | teacher | student | gap |\n|---|---|---|---|\n"
        f"| top-1 % | {100 * teacher['top1']:.2f} | {100 * student['top1']:.2f} | {100 * student['top1_gap']:+.2f} |\n"
        f"| worst class % | {100 * teacher['worst_class_acc']:.2f} | {100 * student['worst_class_acc']:.2f} | "
        f"{100 * student['worst_class_gap']:+.2f} |\n"
        f"| minority ({minority}) % | {100 * teacher['minority_acc']:.2f} | {100 * student['minority_acc']:.2f} | "
        f"{100 * (student['minority_acc'] - teacher['minority_acc']):+.2f} |\n"
        f"| MACs | {teacher['macs']:,} | {student['macs']:,} | x{student['macs'] / teacher['macs']:.3f} |\n"
    )


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


def register_version(info, name: str, tags: dict[str, str], description: str) -> str:
    """Register the logged model ``info`` as a new version of ``name`` with ``tags`` and ``description``; its number.

    Through the client rather than ``log_model(registered_model_name=...)``, which prints "Successfully
    registered model" and "Created version" to stderr on every run: registry news belongs in fsmc's own summary.
    """
    client = mlflow.MlflowClient()
    try:
        client.create_registered_model(name)
    except MlflowException as error:  # the usual case after the first run (or another run created it just now)
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(
        name, source=info.model_uri, run_id=info.run_id, tags=tags, description=description, model_id=info.model_id
    )
    return str(version.version)


def log_model_version(
    model: torch.nn.Module,
    example: torch.Tensor,
    class_names: tuple[str, ...],
    registered_name: str,
    tags: dict[str, str],
    description: str,
    artifact_name: str = "student",
):
    """Log ``model`` as the active run's ``artifact_name`` model and register it as a new version of ``registered_name``.

    The signature (float images in [0, 1], N x C x H x W, any batch size) and the class names in the
    metadata are fsmc's input contract: a model logged here can be the teacher of a next round
    (``teacher=models:/...``) with no settings about its input.

    Returns:
        (MLflow's ModelInfo, the registered version number as a string).
    """
    signature = infer_signature(example.numpy(), model(example).detach().numpy().astype(np.float32))
    requirements = [f"torch=={torch.__version__.split('+')[0]}", f"numpy=={np.__version__}"]
    metadata = {"class_names": list(class_names), "input": "float32 images in [0, 1], N x C x H x W, normalisation inside"}
    # TorchScript for every student, float and int8: what `mlflow.pytorch.load_model` returns then takes the calls a
    # PyTorch user makes first (.eval(), .to(device), torch.no_grad()) and any batch size, and loading it runs no
    # Python pickle. (A pt2 / torch.export graph raised NotImplementedError on .eval(); int8 FX graphs cannot be
    # exported at all.) MLflow saves a ScriptModule with torch.jit.save whatever `serialization_format` says, but
    # refuses "pt2", its default, for one.
    # The format is chosen knowingly, so its notices stay out of the run's output: torch's deprecation of TorchScript,
    # and MLflow's "pickle" caution (MLflow files a ScriptModule under its pickle format, though TorchScript archives
    # hold no Python pickle) on saving and on checking the input example.
    mlflow_pytorch_log = logging.getLogger("mlflow.pytorch")
    level = mlflow_pytorch_log.level
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.(trace|trace_method|load)` is deprecated", category=FutureWarning)
        warnings.filterwarnings("ignore", message=r".*looks like a TorchScript archive", category=UserWarning)
        mlflow_pytorch_log.setLevel(logging.ERROR)
        try:
            scripted = torch.jit.trace(model.eval(), example)
            info = mlflow.pytorch.log_model(
                scripted,
                name=artifact_name,
                signature=signature,
                metadata=metadata,
                input_example=example.numpy(),
                serialization_format="pickle",
                pip_requirements=requirements,
            )
        finally:
            mlflow_pytorch_log.setLevel(level)
    return info, register_version(info, registered_name, tags, description)


def log_run(params: Params, ws: Workspace, wall_seconds: float) -> dict:
    """Log the finished pipeline in ``ws`` as one MLflow run and register its student.

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
    if params.teacher.trust_pickle:  # the opt-in is part of the run's record, whether or not a pickle needed it
        tags["fsmc.trust_pickle"] = "true"
    run_experiment = experiment_id(params.tracking.experiment)
    done = _already_logged(run_experiment, tags["fsmc.run_uid"], params.tracking.registered_model)
    if done is not None:
        tag_version(done["name"], done["version"], tags)  # an attempt may have died before its tags
        return done
    description = _description(params, evaluation)
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
        mlflow.log_metrics({**_metrics(evaluation), "wall_seconds": wall_seconds})
        _log_dataset_inputs(ws)
        _log_recovery_curves(client, run.info.run_id, ws)
        mlflow.log_artifacts(str(ws.root), artifact_path="pipeline")
        _, version = log_model_version(student, example, dataset.classes, params.tracking.registered_model, tags, description)
    return {"run_id": run.info.run_id, "name": params.tracking.registered_model, "version": version, "experiment_id": run_experiment}


@task(name="log_to_mlflow", retries=2, retry_delay_seconds=[2, 10])
def log_run_task(params: Params, ws: Workspace, wall_seconds: float) -> dict:
    """Log and register (retried: the tracking server may be briefly unreachable)."""
    return log_run(params, ws, wall_seconds)
