"""MLflow's side of ``fsmc export``: a registered model's run folder downloaded, and the check logged to its run."""

from __future__ import annotations

import json
from pathlib import Path

from fsmc.config import REGISTRY_URI_PATTERN
from fsmc.errors import FsmcError
from tasks.settings import check_registry_store, check_tracking_reachable, tracking_uri


def registered_run_folder(target: str, scratch: Path) -> Path:
    """The pipeline folder that ``models:/NAME/VERSION`` (or ``@ALIAS``) was registered with, downloaded into ``scratch``.

    Its ``run.json`` then names the registry's run (the one the export is logged to) and the
    export's file name ``NAME-vN``, whatever an uploaded ``run.json`` said.
    """
    if not REGISTRY_URI_PATTERN.match(target):
        raise FsmcError(f"{target!r} is not a registry URI; write models:/NAME/VERSION or models:/NAME@ALIAS, or give a run folder.")
    check_tracking_reachable()
    check_registry_store(target)
    # Imported once the URI and the store are known good: a refusal answers before MLflow loads (seconds).
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri())
    name, _, ref = target.removeprefix("models:/").partition("/")
    try:
        if "@" in name:
            name, alias = name.split("@", 1)
            version = client.get_model_version_by_alias(name, alias)
        else:
            version = client.get_model_version(name, ref)
        folder = Path(
            mlflow.artifacts.download_artifacts(
                run_id=version.run_id, artifact_path="pipeline", dst_path=str(scratch), tracking_uri=tracking_uri()
            )
        )
    except MlflowException as error:
        raise FsmcError(
            f"{target} could not be read from the tracking store {tracking_uri()}: {error.message}. "
            "Give models:/NAME/VERSION, models:/NAME@ALIAS, or a run folder."
        ) from None
    record = folder / "run.json"
    previous = json.loads(record.read_text()) if record.is_file() else {}
    record.write_text(json.dumps({**previous, "mlflow_run_id": version.run_id, "export_name": f"{name}-v{version.version}"}))
    return folder


def log_export(run_id: str, onnx_model: Path, onnx_check: Path, check: dict) -> None:
    """Attach the ONNX file and its onnxruntime-vs-torch check to the student's MLflow run (artifacts ``export/``, metrics ``onnx.*``)."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri())
    client.log_artifact(run_id, str(onnx_model), "export")
    client.log_artifact(run_id, str(onnx_check), "export")
    client.log_metric(run_id, "onnx.max_abs_diff", check["max_abs_diff"])
    client.log_metric(run_id, "onnx.prediction_agreement", check["prediction_agreement"])
