"""Shared fixtures: an isolated environment per session and a small pipeline workspace."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# CI and developers keep the ground-truth data and weights beside the repo (../shared).
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def isolated_env(tmp_path_factory):
    """Point every cache and store at a per-session temporary folder."""
    root = tmp_path_factory.mktemp("env")
    os.environ["FSMC_CACHE_DIR"] = str(root / "cache")
    os.environ["PREFECT_HOME"] = str(root / "prefect")
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("FSMC_ALLOW_DOWNLOAD", None)  # tests never download
    os.environ.setdefault("FSMC_DATA_DIR", str(SHARED / "datasets"))
    os.environ.setdefault("FSMC_MODEL_DIR", str(SHARED / "models"))
    yield root


@pytest.fixture(scope="session")
def shared_data():
    """The CIFAR-10 / Tiny-ImageNet files and CIFAR ResNet weights (../shared in CI)."""
    data = Path(os.environ["FSMC_DATA_DIR"])
    if not (data / "cifar10" / "train.npz").is_file():
        pytest.fail(f"CIFAR-10 tests need the data files: set FSMC_DATA_DIR (looked in {data}).")
    return data


@pytest.fixture(scope="session")
def cifar_params(shared_data):
    """CIFAR-10 params at a test budget: ResNet-20 (JPEG-adapted) teacher, short recovery, test subset."""
    from fsmc.config import load_params

    return load_params(
        REPO / "params.yaml",
        ["dataset=cifar10", "teacher=resnet20-jpeg", "k_max=20", "budget=2x", "recover.steps=40", "max_test_images=1000"],
    )


@pytest.fixture(scope="session")
def small_params():
    """Default params with a short recovery, as the tests use them."""
    from fsmc.config import load_params

    return load_params(REPO / "params.yaml", ["recover.steps=120", "teacher.epochs=15"])


@pytest.fixture(scope="session")
def data_workspace(tmp_path_factory, small_params):
    """A workspace after sample_few_shot and curate_ood (the validated data stages)."""
    from fsmc.stages import curate_ood, sample_few_shot
    from fsmc.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("ws-data"))
    sample_few_shot.run(small_params, ws)
    curate_ood.run(small_params, ws)
    return ws


def run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the installed ``fsmc`` console script in ``cwd``, with the project's default MLflow store there.

    ``mlflow.set_tracking_uri`` in a test exports MLFLOW_TRACKING_URI; a CLI run must not inherit it.
    """
    fsmc = Path(sys.executable).with_name("fsmc")
    inherited = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run(
        [str(fsmc), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**inherited, **(env or {})}
    )


def last_json(stdout: str) -> dict:
    """The JSON object a ``--json`` command prints on its last line."""
    return json.loads(stdout.strip().splitlines()[-1])


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a server the test starts and stops)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_url(url: str, timeout: float = 120) -> str:
    """Poll ``url`` until it answers (a server starting up); its body. Fails the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{url} did not answer within {timeout} s")
