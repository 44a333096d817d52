"""Flow ``compress``: sample -> teacher -> curate OOD -> validate -> prune -> recover -> evaluate -> MLflow."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.transactions import transaction

from fsmc.atomic import read_json, write_json, write_text
from fsmc.config import Params, dump_params, load_params, params_from_dict
from fsmc.errors import FsmcError
from fsmc.evaluation import ACCURACY_METRICS, COST_METRICS
from fsmc.run_folder import seal, verify
from fsmc.stages import CACHED_PIPELINE
from fsmc.workspace import Workspace, new_run_folder
from tasks.prefect_artifacts import publish_run_artifacts
from tasks.promotion import mark_rolled_back, promote_task
from tasks.run_summary import run_name
from tasks.settings import tracking_errors, tracking_uri
from tasks.shipping import ship_task
from tasks.stages import STAGE_TASKS, record_inputs_task
from tasks.tracking import log_run_task

REPORTED = (*ACCURACY_METRICS, "worst_class", "per_class", *COST_METRICS)


class LoggingFailed(FsmcError):
    """MLflow could not take the finished run; its outputs stay on disk for ``fsmc log-run``."""


def register_and_promote(p: Params, ws: Workspace, wall_seconds: float) -> tuple[dict, dict]:
    """Log + register, gate, alias: one Prefect transaction (see tasks.promotion for what a failure leaves).

    Raises:
        LoggingFailed: the tracking server did not take the run even after the task's retries.
    """
    registered = None
    try:
        with transaction() as txn:
            shipped = ship_task(p, ws)
            registered = log_run_task(p, ws, wall_seconds, shipped)
            txn.set("registered", registered)
            txn.set("alias", p.gate.alias)
            promotion = promote_task(p, ws, registered, shipped)
            # Which MLflow run holds this folder: `fsmc export` logs its ONNX file there.
            write_json(ws.run_record, {**read_json(ws.run_record), "mlflow_run_id": registered["run_id"], "registered_model": registered})
    except Exception as error:
        try:
            mark_rolled_back(registered, f"{type(error).__name__}: {error}")
        except Exception:  # the server that failed the run may fail the tag too; the message below says all
            pass
        if not isinstance(error, tracking_errors()):
            raise  # a bug or bad input, not the tracking store: keep its own message and traceback
        raise LoggingFailed(
            f"Logging the finished run to MLflow at {tracking_uri()} failed ({type(error).__name__}: {str(error)[:300]}). "
            f"Nothing is lost: the run's outputs stay in {ws.root}; once the tracking store answers, log them "
            f"with `fsmc log-run {ws.root}`."
        ) from error
    return registered, {**promotion, "shipped": shipped_summary(shipped)}


def shipped_summary(shipped: dict) -> dict:
    """The ship report as the run's JSON tells it: the runtime, accuracy as shipped, latency per batch, notices."""
    return {
        "runtime": shipped["choice"],
        "accuracy": {k: shipped["accuracy"][k] for k in ("top1", "worst_class_acc", "agreement_with_fp32", "top1_vs_fp32")},
        "latency": shipped["latency"],
        "notices": shipped["notices"],
    }


@flow(name="log-run")
def log_run_flow(workspace: str) -> dict[str, Any]:
    """Log, register and gate a finished run folder (one that MLflow could not take when it ran)."""
    ws = Workspace(Path(workspace))
    verify(ws, [ws.run_params, ws.metrics, ws.student_model, ws.teacher_model, ws.few_shot_manifest, ws.ood_manifest])
    p = load_params(ws.run_params)
    record = read_json(ws.run_record)
    registered, promotion = register_and_promote(p, ws, record["wall_seconds"])
    return {"mlflow_run_id": registered["run_id"], "registered_model": registered, "promotion": promotion}


def _compress_run_name() -> str:
    """The Prefect flow run's name: what it compresses, as the MLflow run is named (not a random "gorgeous-corgi")."""
    from prefect.runtime import flow_run

    try:
        return run_name(params_from_dict(flow_run.parameters["params"]))
    except FsmcError:  # bad params fail inside the flow with their own message; the name must not hide it
        return "compress (invalid params)"


@flow(name="compress", flow_run_name=_compress_run_name)
def compress_flow(params: dict[str, dict[str, Any]], workspace: str = "", reuse: bool = True) -> dict[str, Any]:
    """Compress the teacher end to end and register the student.

    Args:
        params: ``{section: {key: value}}`` as in params.yaml (validated here again).
        workspace: folder receiving every stage's outputs (empty: a new ``runs/<time>-<id>``, as
            scheduled runs need). An existing run folder is resumed.
        reuse: restore stages whose inputs are unchanged from the stage cache (a rerun after a crash
            recomputes only what did not finish); ``False`` recomputes every stage.

    Returns:
        The run summary (teacher and student metrics, MLflow run and model version, reused stages).
    """
    started = time.perf_counter()
    p = params_from_dict(params)
    ws = Workspace(Path(workspace) if workspace else new_run_folder())
    run_uid = _run_uid(ws, dump_params(p))
    write_text(ws.run_params, dump_params(p))  # the run folder alone is enough for `fsmc log-run`
    record_inputs_task(p, ws)
    reused = []
    for stage in CACHED_PIPELINE:
        result, hit = STAGE_TASKS[stage](p, ws, reuse)
        if hit:
            reused.append(stage)
    evaluation = result
    wall_seconds = time.perf_counter() - started
    # Sealed: log-run and export verify these checksums before loading anything from the folder.
    record = {"wall_seconds": round(wall_seconds, 3), "run_uid": run_uid, "stages_reused": reused, "outputs": seal(ws)}
    write_json(ws.run_record, record)
    registered, promotion = register_and_promote(p, ws, wall_seconds)
    publish_run_artifacts(evaluation, registered, registered["experiment_id"], f"{p.compress.scheme} + {p.recover.label}")
    return {
        "teacher": {k: evaluation["teacher"][k] for k in REPORTED},
        "student": {k: evaluation["student"][k] for k in (*REPORTED, "per_class_gap", "top1_gap", "worst_class_gap")},
        "classes": evaluation["classes"],
        "minority_classes": evaluation["minority_class_names"],
        "few_shot_counts": evaluation["few_shot_counts"],
        "method": p.recover.label,
        "scheme": p.compress.scheme,
        "workspace": str(ws.root),
        "wall_seconds": round(time.perf_counter() - started, 3),
        "mlflow_run_id": registered["run_id"],
        "registered_model": {"name": registered["name"], "version": registered["version"]},
        "promotion": promotion,
        "stages_reused": reused,
    }


def _run_uid(ws: Workspace, params_text: str) -> str:
    """The id naming this run folder in MLflow, so a retried or repeated log-run never logs it twice.

    A folder run again with the same params keeps its id (its MLflow run is found and reused, or a
    partial one replaced); other params make it another run.
    """
    if ws.run_record.is_file() and ws.run_params.is_file() and ws.run_params.read_text(encoding="utf-8") == params_text:
        previous = read_json(ws.run_record).get("run_uid")
        if previous:
            return previous
    return secrets.token_hex(8)
