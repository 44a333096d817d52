"""`fsmc benchmark`: the smoke preset on a real Dask LocalCluster, killed and resumed, logged, reported, rendered."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image
import mlflow
import numpy as np
import pytest

from tests.conftest import REPO, free_port, last_json, run_cli

pytestmark = pytest.mark.integration
SMOKE = ["benchmark", "--preset", "smoke", "--workers", "2"]


def _screenshot(page: Path, png: Path) -> np.ndarray:
    """Headless Chromium (Debian's package) renders ``page`` to ``png``; returns the pixels."""
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={png.parent / 'chromium-profile'}", "--window-size=1200,2200", f"--screenshot={png}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    return matplotlib.image.imread(png)


def _a_finished_cell_is_cached(cells: Path) -> bool:
    """Some cell's last stage (evaluate) is in the stage cache, so the whole cell can be reused after a kill."""
    stored = [entry.read_bytes() for entry in (Path(os.environ["FSMC_CACHE_DIR"]) / "stages" / "evaluate").glob("*/metrics")]
    return any(metrics.read_bytes() in stored for metrics in cells.glob("*/evaluate/metrics.json"))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    return root


def test_smoke_benchmark_resumes_after_a_kill_logs_nested_runs_and_renders_its_report(project):
    cells = project / "reports" / "smoke" / "cells"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    victim = subprocess.Popen([str(Path(sys.executable).with_name("fsmc")), *SMOKE], cwd=project, env=env, text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 600
    while not _a_finished_cell_is_cached(cells):
        assert victim.poll() is None, victim.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.2)
    os.killpg(victim.pid, signal.SIGKILL)  # the flow, the Dask scheduler and its workers
    victim.communicate()
    assert not (project / "reports" / "smoke" / "results.csv").exists()

    resumed = run_cli([*SMOKE, "--json"], cwd=project)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    first = last_json(resumed.stdout)
    assert first["cells"] == 8 and 1 <= first["reused_cells"] < 8  # what finished before the kill was kept

    again = run_cli([*SMOKE, "--json"], cwd=project)
    assert again.returncode == 0, again.stderr[-3000:]
    second = last_json(again.stdout)
    assert second["reused_cells"] == 8
    measured = ("latency_ms", "speedup", "latency_b1_ms", "speedup_b1", "deployment_speedup_b1", "wall_s")  # timings differ run to run; accuracy must not
    strip = lambda rows: [{k: v for k, v in r.items() if not k.startswith(measured)} for r in rows]  # noqa: E731
    assert strip(second["summary"]) == strip(first["summary"])

    # The paper's table: one row per method x {base, +oe}, averaged over 2 seeds, with the teacher's gaps.
    lines = Path(project / second["results_csv"]).read_text().splitlines()
    assert len(lines) == 1 + 4 and lines[0].startswith("scheme,budget,method,oe,seeds,top1,top1_std")
    results = json.loads(Path(project / second["results_json"]).read_text())
    assert len(results["cells"]) == 8 and {row["seeds"] for row in results["summary"]} == {2}
    teacher = results["teachers"][0]["top1"]
    for row in results["summary"]:
        assert row["top1_gap"] == pytest.approx(row["top1"] - teacher, abs=1e-6)
        assert row["macs"] < results["teachers"][0]["macs"]

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    try:
        client = mlflow.MlflowClient()
        experiment = client.get_experiment_by_name("fsmc-benchmark")
        children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{second['mlflow_run_id']}'")
        assert len(children) == 8
        assert all("student_top1" in run.data.metrics and "method" in run.data.params for run in children)
        artifacts = {a.path for a in client.list_artifacts(second["mlflow_run_id"])}
        assert {"results.csv", "results.json", "report.html"} <= artifacts
    finally:
        mlflow.set_tracking_uri(None)
        os.environ.pop("MLFLOW_TRACKING_URI", None)

    report = project / second["report"]
    page = report.read_text()
    assert page.count("<img") == 5
    assert "+oe minus base per method" in page  # the plug-in's per-class effect, at a glance
    pixels = _screenshot(report, project / "report.png")
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1100
    assert pixels[..., :3].std() > 0.05  # tables and figures, not a blank page


def test_bad_benchmark_input_is_named_within_seconds_and_writes_nothing(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    unknown = run_cli(["benchmark", "--preset", "papers"], cwd=tmp_path)
    assert unknown.returncode == 2 and "Valid presets: smoke" in unknown.stderr

    started = time.monotonic()
    address = f"tcp://127.0.0.1:{free_port()}"
    nobody = run_cli(["benchmark", "--preset", "smoke", "--dask-address", address], cwd=tmp_path)
    assert nobody.returncode == 2 and address in nobody.stderr.replace("\n", " ")
    assert time.monotonic() - started < 60

    empty = tmp_path / "no-data"
    empty.mkdir()
    missing = run_cli(["benchmark", "--preset", "paper-cifar10"], cwd=tmp_path, env={"FSMC_DATA_DIR": str(empty)})
    assert missing.returncode == 2 and str(empty / "cifar10") in missing.stderr.replace("\n", "")

    zero = run_cli(["benchmark", "--preset", "robustness-cifar10", "--only", "teacher=resnet20-jpeg", "--only", "scheme=distill"], cwd=tmp_path)
    assert zero.returncode == 2 and "zero cells" in zero.stderr
    assert not (tmp_path / "reports").exists() and not (tmp_path / "mlruns").exists()


def test_local_dask_workers_keep_glibc_adaptive_malloc():
    """distributed's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which made every recovery step fault its
    activations in afresh (block-drop 60 %: 48 s instead of 33 s per 100 steps); fsmc's local workers start without it."""
    from prefect import flow, task

    from flows.benchmark import dask_task_runner

    @task
    def worker_environment() -> tuple[str | None, int]:
        return os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.getpid()

    @flow(task_runner=dask_task_runner(None, 1))
    def probe() -> tuple[str | None, int]:
        return worker_environment.submit().result()

    threshold, pid = probe()
    assert pid != os.getpid(), "the task ran in the flow's process, not in a Dask worker"
    assert threshold is None
