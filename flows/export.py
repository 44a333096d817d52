"""Flow ``export``: a finished run's student to ONNX, checked with onnxruntime, logged to its MLflow run, copied out.

The pure worker is :func:`fsmc.export.export_run`; the MLflow side is :mod:`tasks.export_tracking`.
``fsmc export`` checks its arguments and resolves the run folder (a registered model's is downloaded)
before this flow starts, so a refusal answers before Prefect loads.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from prefect import flow, task

from fsmc.atomic import atomic_write, read_json
from fsmc.export import export_run
from fsmc.workspace import Workspace
from tasks.export_tracking import log_export


@task(name="export-onnx")
def export_task(folder: str) -> dict:
    """:func:`fsmc.export.export_run` on run folder ``folder``."""
    return export_run(Workspace(Path(folder)))


@task(name="log-export", retries=2, retry_delay_seconds=2)
def log_export_task(run_id: str, folder: str, check: dict) -> None:
    """Attach the ONNX file and its check to the student's MLflow run."""
    ws = Workspace(Path(folder))
    log_export(run_id, ws.onnx_model, ws.onnx_check, check)


@flow(name="fsmc-export")
def export_flow(folder: str, output: str | None = None) -> dict:
    """Export run folder ``folder``'s student; returns the check with the file's ``path`` and the ``mlflow_run_id`` it was logged to.

    Args:
        folder: a finished run folder (verified by the caller).
        output: where to copy the .onnx file (default: the folder's ``export/student.onnx``, or
            ``exports/NAME-vN.onnx`` for a registered model, whose folder is temporary).
    """
    ws = Workspace(Path(folder))
    check = export_task(folder)
    record = read_json(ws.run_record) if ws.run_record.is_file() else {}
    if record.get("mlflow_run_id"):
        log_export_task(record["mlflow_run_id"], folder, check)
    path = ws.onnx_model
    target = Path(output) if output is not None else None
    if target is None and record.get("export_name"):  # a registered model's folder is temporary: keep the file
        target = Path("exports") / f"{record['export_name']}.onnx"
    if target is not None:  # written wherever the user said (or kept out of a temporary registry folder)
        atomic_write(target, lambda tmp: shutil.copyfile(ws.onnx_model, tmp))
        path = target
    return {**check, "path": str(path), "mlflow_run_id": record.get("mlflow_run_id")}
