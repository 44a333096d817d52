"""Real servers on free 127.0.0.1 ports: the MLflow UI over the project's store, the Prefect server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, TEST_BUDGET_CLI, free_port, run_cli, wait_for_url

pytestmark = pytest.mark.integration


def _start(args: list[str], cwd: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}, **(extra_env or {})}
    return subprocess.Popen([str(Path(sys.executable).with_name("fsmc")), *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return err


def test_ui_serves_the_project_store_and_a_run_logs_through_it(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    port = free_port()
    server = _start(["ui", "--port", str(port)], tmp_path)
    try:
        assert wait_for_url(f"http://127.0.0.1:{port}/health").strip() == "OK"
        result = run_cli(
            ["run", "--json", *TEST_BUDGET_CLI],
            cwd=tmp_path,
            env={"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"},
        )
        assert result.returncode == 0, result.stderr[-3000:]
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        # The run and the registered version, read back through the server's REST API.
        run = json.loads(wait_for_url(f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/get?run_id={summary['mlflow_run_id']}"))
        metrics = {m["key"]: m["value"] for m in run["run"]["data"]["metrics"]}
        assert metrics["student.top1"] == pytest.approx(summary["student"]["top1"])
        name, version = summary["registered_model"]["name"], summary["registered_model"]["version"]
        registered = json.loads(wait_for_url(f"http://127.0.0.1:{port}/api/2.0/mlflow/model-versions/get?name={name}&version={version}"))
        assert registered["model_version"]["run_id"] == summary["mlflow_run_id"]
    finally:
        _stop(server)
    assert server.returncode is not None
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()  # the server used the project's store


def test_prefect_server_starts_on_loopback_and_stops(tmp_path):
    port = free_port()
    server = _start(["server", "start", "--port", str(port)], tmp_path)
    try:
        assert wait_for_url(f"http://127.0.0.1:{port}/api/health").strip() == "true"
        # The UI reads its data from the port the server is on, not Prefect's default 4200.
        assert json.loads(wait_for_url(f"http://127.0.0.1:{port}/ui-settings"))["api_url"] == f"http://127.0.0.1:{port}/api"
    finally:
        _stop(server)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=3)


def test_a_non_loopback_host_is_warned_about(tmp_path):
    port = free_port()
    server = _start(["ui", "--host", "0.0.0.0", "--port", str(port)], tmp_path)
    try:
        wait_for_url(f"http://127.0.0.1:{port}/health")
    finally:
        err = _stop(server)
    assert "warning" in err and "0.0.0.0" in err and "no authentication" in err


def _filter(api: str, kind: str) -> list[dict]:
    """Every ``kind`` (deployments, flow_runs, artifacts) the Prefect server at ``api`` holds."""
    request = urllib.request.Request(f"{api}/{kind}/filter", data=b"{}", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_served_deployment_has_the_cron_schedule_and_runs_through_the_api(tmp_path, prefect_api):
    """On the session's Prefect server (`fsmc server start` itself is tested above): deployments are by name."""
    import mlflow

    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    api = prefect_api
    served = None
    fast = TEST_BUDGET_CLI
    try:
        served = _start(["serve", *fast], tmp_path, {"PREFECT_API_URL": api})
        deadline = time.monotonic() + 120
        while not {"nightly", "smoke"} <= {d["name"] for d in _filter(api, "deployments")}:
            assert time.monotonic() < deadline, "fsmc serve never registered its deployments"
            assert served.poll() is None, served.communicate()[1][-3000:]
            time.sleep(1)
        deployment = next(d for d in _filter(api, "deployments") if d["name"] == "nightly")
        assert [s["schedule"]["cron"] for s in deployment["schedules"]] == ["0 3 * * *"]
        benchmark = next(d for d in _filter(api, "deployments") if d["name"] == "smoke")
        assert [s["schedule"]["cron"] for s in benchmark["schedules"]] == ["0 4 * * 0"]

        result = run_cli(["deploy", "run", "nightly", *fast, "--timeout", "600"], cwd=tmp_path, env={"PREFECT_API_URL": api})
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        assert "Completed" in result.stdout
        # The run really happened in the served project: a run folder and a registered model version.
        (run_folder,) = list((tmp_path / "runs").iterdir())
        assert (run_folder / "evaluate" / "metrics.json").is_file()
        client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
        assert client.search_model_versions("name='fsmc-student'")
        # In the Prefect UI the run is named for what it compressed, as its MLflow run is, and shows its results.
        # (The cron schedule's future runs are there too, named when they start.)
        compress_runs = [r for r in _filter(api, "flow_runs") if r["deployment_id"] == deployment["id"] and r["state_type"] == "COMPLETED"]
        assert [r["name"] for r in compress_runs] == ["digits digits-cnn channel mir+oe"]
        artifacts = {a["key"]: a for a in _filter(api, "artifacts") if a["flow_run_id"] == compress_runs[0]["id"]}
        assert artifacts["per-class-accuracy"]["type"] == "table"
        # A link artifact is stored as Markdown: the link to the run's MLflow page.
        assert "/#/experiments/" in artifacts["mlflow-run"]["data"] and "/runs/" in artifacts["mlflow-run"]["data"]

        # The benchmark deployment: one cell of the smoke grid, on the served process's Dask cluster.
        one_cell = ["--only", "method=kd", "--only", "oe=base", "--only", "seed=0", "--set", "recover.steps=20"]
        result = run_cli(["deploy", "run", "benchmark/smoke", *one_cell, "--timeout", "600"], cwd=tmp_path, env={"PREFECT_API_URL": api})
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        assert len((tmp_path / "reports" / "smoke" / "results.csv").read_text().splitlines()) == 2
    finally:
        if served is not None:
            _stop(served)


def test_deploy_run_without_a_server_says_how_to_start_one(tmp_path):
    result = run_cli(["deploy", "run", "nightly"], cwd=tmp_path, env={"PREFECT_API_URL": ""})
    assert result.returncode == 2
    assert "PREFECT_API_URL is not set" in result.stderr and "fsmc server start" in result.stderr


def test_an_unreachable_tracking_server_is_named_before_any_work(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    result = run_cli(["run"], cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri})
    assert result.returncode == 2
    assert uri in result.stderr and "does not answer" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [], "nothing may be written when the tracking server is down at start"


def test_a_server_lost_mid_run_keeps_the_outputs_and_log_run_logs_them_later(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = _start(["ui", "--port", str(port)], tmp_path)
    try:
        wait_for_url(f"{uri}/health")
        run = _start(
            ["run", "--workspace", "runs/x", *TEST_BUDGET_CLI, "--set", "oe=false", "--set", "recover.steps=300"],
            tmp_path,
            {"MLFLOW_TRACKING_URI": uri},
        )
        deadline = time.monotonic() + 120
        while not (tmp_path / "runs/x/few_shot/manifest.csv").exists():
            assert time.monotonic() < deadline and run.poll() is None, "the run never started"
            time.sleep(0.5)
        # The run is paused while the server goes down, so the server is lost mid-run however fast the machine is.
        run.send_signal(signal.SIGSTOP)
        _stop(server)
        assert not (tmp_path / "runs/x/evaluate").exists(), "the run got past recovery within one poll"
        run.send_signal(signal.SIGCONT)
        _, err = run.communicate(timeout=600)
        assert run.returncode == 2, err[-3000:]
        assert uri in err and "fsmc log-run runs/x" in err and "Traceback" not in err
        metrics = json.loads((tmp_path / "runs/x/evaluate/metrics.json").read_text())  # nothing was lost

        server = _start(["ui", "--port", str(port)], tmp_path)
        wait_for_url(f"{uri}/health")
        logged = run_cli(["log-run", "runs/x", "--json"], cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri})
        assert logged.returncode == 0, logged.stderr[-3000:]
        result = json.loads(logged.stdout.strip().splitlines()[-1])
        run_record = json.loads(wait_for_url(f"{uri}/api/2.0/mlflow/runs/get?run_id={result['mlflow_run_id']}"))
        logged_metrics = {m["key"]: m["value"] for m in run_record["run"]["data"]["metrics"]}
        assert logged_metrics["student.top1"] == pytest.approx(metrics["student"]["top1"])
        assert result["registered_model"]["version"]
        # Logging is idempotent: the same folder again gives the same run and version, not a second copy.
        again = run_cli(["log-run", "runs/x", "--json"], cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri})
        assert again.returncode == 0, again.stderr[-3000:]
        second = json.loads(again.stdout.strip().splitlines()[-1])
        assert second["mlflow_run_id"] == result["mlflow_run_id"]
        assert second["registered_model"]["version"] == result["registered_model"]["version"]
    finally:
        _stop(server)
