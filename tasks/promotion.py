"""Promotion: the registered student gets the registry alias only if it passes the gate.

Registration, gate and alias run in one Prefect transaction (``flows.compress``):

* gate fails -> the version stays registered, without the alias, tagged with why
  (``gate.passed=false``, ``gate.reasons``); the previous champion keeps the alias;
* gate passes -> tags first, alias last, so a version holding the alias always
  carries its gate record;
* anything raises after registration -> the transaction rolls back: a version that
  got the alias gives it back to the previous champion, and the version is tagged
  ``promotion=rolled-back`` instead of being deleted (nothing a user produced is lost).
"""

from __future__ import annotations

import json

import mlflow
from mlflow.exceptions import MlflowException
from prefect import task
from prefect.transactions import Transaction, get_transaction

from fsmc.atomic import read_json
from fsmc.config import Params
from fsmc.gate import decide
from fsmc.shipping.speedups import reference_label, reference_teacher
from fsmc.workspace import Workspace
from tasks.settings import tracking_uri, use_tracking_store


def _current_holder(client: mlflow.MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def gate_speed(shipped: dict, batch: int) -> dict:
    """What the gate reads of a ship report: the compression speed-up at ``batch`` and the latencies behind it."""
    latency = shipped["latency"]
    timed = latency["batches"][str(batch)]
    student = timed.get("student_same_runtime", timed["student_shipped"])
    return {
        "speedup": timed["compression_speedup"],
        "deployment_speedup": timed["deployment_speedup"],
        "teacher_ms": reference_teacher(timed)["median_ms"],
        "student_ms": student["median_ms"],
        "batch": batch,
        "runtime": reference_label(latency, timed),
    }


def gated_metrics(metrics: dict, shipped: dict) -> dict:
    """``evaluate/metrics.json`` with the student's accuracy as shipped (its runtime's precision may differ from fp32)."""
    accuracy = shipped["accuracy"]
    return {**metrics, "student": {**metrics["student"], "top1": accuracy["top1"], "worst_class_acc": accuracy["worst_class_acc"]}}


@task(name="promotion_gate")
def promote_task(params: Params, ws: Workspace, registered: dict, shipped: dict) -> dict:
    """Record the gate decision on the model version and move the alias if it passed.

    The gate reads the student as shipped: its accuracy in the shipped runtime, and the compression speed-up
    (teacher and student in that same runtime) at ``gate.latency_batch``.
    """
    use_tracking_store()
    client = mlflow.MlflowClient()
    name, version, alias = registered["name"], registered["version"], params.gate.alias
    speed = gate_speed(shipped, params.gate.latency_batch)
    where = f"at batch {speed['batch']}, teacher and student both in {speed['runtime']}"
    decision = decide(gated_metrics(read_json(ws.metrics), shipped), speed["speedup"], params.gate, where)
    previous = _current_holder(client, name, alias)
    transaction = get_transaction()
    if transaction is not None:
        transaction.set("previous_holder", previous)
    tags = {
        "gate.passed": str(decision.passed).lower(),
        "gate.reasons": "; ".join(decision.reasons) or "-",
        "gate.measured": json.dumps({k: round(v, 6) for k, v in decision.measured.items()}),
        "promotion": "done",  # clears a "rolled-back" left by an earlier failed attempt
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.log_metric(registered["run_id"], "gate.speedup", float(speed["speedup"]))
    if decision.passed:
        client.set_registered_model_alias(name, alias, version)
    holder = _current_holder(client, name, alias)
    return {"passed": decision.passed, "reasons": decision.reasons, "alias": alias, "alias_holder": holder, "previous_holder": previous, **speed}


@promote_task.on_rollback
def _give_the_alias_back(transaction: Transaction) -> None:
    """Undo a promotion whose transaction failed later: the previous holder gets the alias back."""
    registered = transaction.get("registered", None)
    if not registered:
        return
    client = mlflow.MlflowClient(tracking_uri())
    previous = transaction.get("previous_holder", None)
    alias = transaction.get("alias", "champion")
    if previous:
        client.set_registered_model_alias(registered["name"], alias, previous)
    elif _current_holder(client, registered["name"], alias) == registered["version"]:
        client.delete_registered_model_alias(registered["name"], alias)


def mark_rolled_back(registered: dict | None, why: str) -> None:
    """Tag a registered version whose promotion transaction failed (kept, never deleted)."""
    if not registered:
        return
    client = mlflow.MlflowClient(tracking_uri())
    client.set_model_version_tag(registered["name"], registered["version"], "promotion", f"rolled-back: {why}"[:500])
