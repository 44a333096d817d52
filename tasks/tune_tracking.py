"""MLflow and Prefect views of a ``fsmc tune`` search: a parent run with one nested run per candidate.

The chosen candidate's own run (from the ``compress`` flow, the one holding the registered version) is
nested under the same parent, so the experiment page shows the search as one tree.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import mlflow
from mlflow.entities import Metric, Param
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from fsmc.config import Params
from tasks.git_info import git_commit
from tasks.settings import use_tracking_store
from tasks.tracking import experiment_id

_METRICS = ("top1", "worst_class_acc", "top1_drop", "worst_class_drop", "speedup", "speedup_b1", "deployment_speedup_b1",
            "macs_ratio", "student_ms", "teacher_ms", "wall_seconds")


@task(name="log_tune", retries=2, retry_delay_seconds=[2, 10])
def log_tune(params: Params, rows: list[dict], chosen: dict, registered: dict, artifacts: list[Path], message: str) -> str:
    """Parent run (target, chosen candidate, plot, candidates, params file) and a nested run per candidate; returns its id."""
    client = mlflow.MlflowClient(use_tracking_store())
    t = params.target
    target = f"x{t.speedup:g} at batch {t.batch}" if t.speedup else f"MACs x{t.macs:g}"
    parent = client.create_run(
        experiment_id(params.tracking.experiment),
        run_name=f"tune {params.data.teacher} {target}",
        tags={"fsmc.kind": "tune", "git_commit": git_commit(), "chosen": chosen["name"], "passed": str(chosen.get("passed")).lower(),
              "message": message[:5000] or "-"},
    )
    parent_id = parent.info.run_id
    now = int(time.time() * 1000)
    client.log_batch(parent_id, params=[Param(f"target.{k}", str(v)) for k, v in params.to_dict()["target"].items()]
                     + [Param("gate.max_top1_drop", str(params.gate.max_top1_drop)),
                        Param("gate.max_worst_class_drop", str(params.gate.max_worst_class_drop))],
                     metrics=[Metric(f"chosen.{k}", float(chosen[k]), now, 0) for k in _METRICS]
                     + [Metric("candidates", float(len(rows)), now, 0)])
    for row in rows:
        child = client.create_run(parent.info.experiment_id, run_name=f"{row['name']} ({row['round']})",
                                  tags={"mlflow.parentRunId": parent_id, "fsmc.candidate_id": row["candidate_id"],
                                        "passed": str(row["passed"]).lower(), "misses": json.dumps(row["misses"])})
        client.log_batch(child.info.run_id,
                         params=[Param("settings", " ".join(row["settings"])), Param("round", row["round"]), Param("steps", str(row["steps"])),
                                 Param("runtime", row["runtime"])],
                         metrics=[Metric(k, float(row[k]), now, 0) for k in _METRICS])
        client.set_terminated(child.info.run_id)
    client.set_tag(registered["mlflow_run_id"], "mlflow.parentRunId", parent_id)
    for path in artifacts:
        client.log_artifact(parent_id, str(path))
    client.set_terminated(parent_id)
    return parent_id


@task(name="publish_tune_artifacts")
def publish_tune_artifacts(rows: list[dict], chosen: dict, passed: bool, message: str, front: dict[str, list[dict]]) -> None:
    """The candidates as a Prefect table artifact and the outcome (chosen student, front) as a markdown artifact."""
    create_table_artifact(
        key="tune-candidates",
        table=[
            {"candidate": r["name"], "round": r["round"], "speed-up": round(r["speedup"], 3), "MACs": round(r["macs_ratio"], 3),
             "top-1 drop (pt)": round(100 * r["top1_drop"], 2), "worst-class drop (pt)": round(100 * r["worst_class_drop"], 2),
             "passed": r["passed"]}
            for r in rows
        ],
        description="Every candidate of the search: measured speed-up (shipped runtime), MACs and accuracy drops.",
    )
    lines = [f"## {'Chosen' if passed else 'Closest (no candidate passed)'}: {chosen['name']} ({chosen['round']} recovery)", "",
             f"speed-up x{chosen['speedup']:.2f}, top-1 drop {100 * chosen['top1_drop']:.2f} pt, worst-class drop "
             f"{100 * chosen['worst_class_drop']:.2f} pt", ""]
    if message:
        lines += [message, ""]
    lines += ["### Pareto front (speed-up against top-1)", ""]
    lines += [f"- {r['name']} ({r['round']}): x{r['speedup']:.2f}, top-1 {100 * r['top1']:.2f} %" for r in front["top1"]]
    create_markdown_artifact(key="tune-outcome", markdown="\n".join(lines), description="What fsmc tune chose, and the front.")
