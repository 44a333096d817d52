"""What a `compress` flow run shows on its Prefect page: the per-class result and the way to its MLflow run."""

from __future__ import annotations

from prefect.artifacts import create_link_artifact, create_table_artifact

from tasks.settings import tracking_uri

# `fsmc ui`'s default address: where a local store's runs are browsed.
_LOCAL_UI = "http://127.0.0.1:5000"


def mlflow_run_url(experiment_id: str, run_id: str) -> str:
    """The MLflow UI page of a run: the tracking server itself, or `fsmc ui` for the project's local store."""
    uri = tracking_uri()
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else _LOCAL_UI
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def publish_run_artifacts(evaluation: dict, registered: dict, experiment_id: str, label: str) -> None:
    """A table artifact (per class: shots, teacher, student, gap) and a link artifact to the MLflow run."""
    teacher, student = evaluation["teacher"], evaluation["student"]
    minority = set(evaluation["minority_classes"])
    rows = [
        {
            "class": f"{name}{' *' if c in minority else ''}",
            "shots": evaluation["few_shot_counts"][c],
            "teacher %": round(100 * teacher["per_class"][c], 2),
            "student %": round(100 * student["per_class"][c], 2),
            "gap": round(100 * student["per_class_gap"][c], 2),
        }
        for c, name in enumerate(evaluation["classes"])
    ]
    rows.append(
        {
            "class": "top-1",
            "shots": sum(evaluation["few_shot_counts"]),
            "teacher %": round(100 * teacher["top1"], 2),
            "student %": round(100 * student["top1"], 2),
            "gap": round(100 * student["top1_gap"], 2),
        }
    )
    create_table_artifact(
        key="per-class-accuracy",
        table=rows,
        description=f"{label}: test accuracy per class, teacher vs student (* = minority class).",
    )
    create_link_artifact(
        key="mlflow-run",
        link=mlflow_run_url(experiment_id, registered["run_id"]),
        link_text=f"MLflow run {registered['run_id']} ({registered['name']} version {registered['version']})",
        description="The run's metrics, curves, dataset inputs and registered student (local store: start `fsmc ui`).",
    )
