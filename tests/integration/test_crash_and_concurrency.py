"""Faults of real use: `fsmc run` killed with SIGKILL mid-recovery, and two runs at once on one repo."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from tests.conftest import REPO, last_json, run_cli

pytestmark = pytest.mark.integration
FAST = ["--set", "teacher.epochs=15"]  # conftest.TEST_BUDGET's teacher: reused from the stage cache
BEFORE_RECOVERY = ["sample_few_shot", "teacher", "curate_ood", "validate", "compress"]


def _fsmc(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    # Its own process group: the kill below takes the Prefect server it started with it, as a crash would.
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("fsmc")), *args], cwd=cwd, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )


def _leftovers(*roots: Path) -> list[Path]:
    """Temporary files or folders of interrupted writes (fsmc.atomic and the stage cache name them *.tmp)."""
    return [path for root in roots if root.exists() for path in root.rglob("*.tmp")]


def _compress_is_cached(folder: Path) -> bool:
    """The run folder's compression result has reached the stage cache: from then on the flow is in recovery."""
    summary = folder / "compress" / "summary.json"
    if not summary.is_file():
        return False
    stored = Path(os.environ["FSMC_CACHE_DIR"]) / "stages" / "compress"
    return any(entry.read_bytes() == summary.read_bytes() for entry in stored.glob("*/compress_summary"))


@pytest.fixture()
def project(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def test_a_run_killed_during_recovery_resumes_from_its_finished_stages(project):
    # A seed no other test uses, so recovery is not already in the stage cache; steps enough that recovery takes
    # seconds, far more than one poll below (the resumed run recomputes all of them).
    params = [*FAST, "--set", "recover.steps=400", "--set", "recover.seed=9107", "--set", "early_stopping=off"]
    folder = project / "runs" / "crashed"
    victim = _fsmc(["run", "--json", "--workspace", "runs/crashed", *params], project)
    deadline = time.monotonic() + 300
    while not _compress_is_cached(folder):
        assert victim.poll() is None, victim.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "compression did not finish within 300 s"
        time.sleep(0.2)
    os.killpg(victim.pid, signal.SIGSTOP)  # frozen where the poll found it, however fast the machine
    assert victim.poll() is None, "the run finished before it could be killed: give recovery more steps"
    os.killpg(victim.pid, signal.SIGKILL)
    victim.communicate()

    assert not (folder / "recover" / "model.pt").exists()
    assert not _leftovers(folder)

    resumed = run_cli(["run", "--json", "--workspace", "runs/crashed", *params], cwd=project)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = last_json(resumed.stdout)
    assert result["stages_reused"] == BEFORE_RECOVERY  # recovery and evaluation ran again, the rest was reused
    assert (folder / "recover" / "model.pt").is_file() and (folder / "evaluate" / "metrics.json").is_file()
    assert not _leftovers(project, Path(os.environ["FSMC_CACHE_DIR"]))

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    try:
        client = mlflow.MlflowClient()
        runs = client.search_runs([client.get_experiment_by_name("fsmc").experiment_id])
        assert [run.info.run_id for run in runs] == [result["mlflow_run_id"]]  # the killed attempt logged nothing
        version = client.get_model_version(result["registered_model"]["name"], result["registered_model"]["version"])
        assert version.run_id == result["mlflow_run_id"]
    finally:
        mlflow.set_tracking_uri(None)
        os.environ.pop("MLFLOW_TRACKING_URI", None)


def test_two_runs_at_once_on_one_repo_corrupt_nothing(project):
    # --fresh: both compute every stage and store it in the shared stage cache at the same time.
    params = [*FAST, "--set", "recover.steps=120", "--set", "recover.seed=9108", "--fresh"]
    runs = [_fsmc(["run", "--json", "--workspace", f"runs/at-once-{i}", *params], project) for i in range(2)]
    outputs = [run.communicate(timeout=900) for run in runs]
    for run, (_, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stderr[-3000:]
    first, second = (last_json(stdout) for stdout, _ in outputs)

    for name in ("few_shot/manifest.csv", "ood/manifest.csv", "validate/report.json", "evaluate/metrics.json"):
        assert (project / "runs/at-once-0" / name).read_bytes() == (project / "runs/at-once-1" / name).read_bytes(), name
    assert first["student"] == second["student"]
    assert {first["registered_model"]["version"], second["registered_model"]["version"]} == {"1", "2"}
    assert first["mlflow_run_id"] != second["mlflow_run_id"]

    # The cache entries both wrote are whole: a third run reuses every stage and gets the same student.
    third = run_cli(["run", "--json", "--workspace", "runs/after", *params[:-1]], cwd=project)
    assert third.returncode == 0, third.stderr[-3000:]
    after = last_json(third.stdout)
    assert after["stages_reused"] == [*BEFORE_RECOVERY, "recover", "evaluate"]
    assert after["student"] == first["student"]
    assert after["registered_model"]["version"] == "3"
    assert not _leftovers(project, Path(os.environ["FSMC_CACHE_DIR"]))
