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


def pytest_collection_modifyitems(config, items):
    """Run the files with slow tests first, then those with integration tests, then the rest (each file's order kept).

    Why: under pytest-xdist (`make test`: two workers, a file per worker at a time) the long files then start at
    once and the many quick ones fill the gaps, instead of one long file running alone at the end.
    """
    def weight(item) -> int:
        return 0 if item.get_closest_marker("slow") else 1 if item.get_closest_marker("integration") else 2

    file_weight: dict[str, int] = {}
    for item in items:
        file_weight[item.path] = min(file_weight.get(item.path, 2), weight(item))
    items.sort(key=lambda item: file_weight[item.path])  # stable: files and tests keep their order


@pytest.fixture(scope="session", autouse=True)
def isolated_env(tmp_path_factory):
    """Point every cache and store at a per-session temporary folder."""
    root = tmp_path_factory.mktemp("env")
    # Under pytest-xdist each worker has a basetemp of its own inside the session's: the workers share one cache
    # there, so a teacher or stage one of them finished is reused by the other (entries are written atomically).
    session_root = tmp_path_factory.getbasetemp().parent if os.environ.get("PYTEST_XDIST_WORKER") else root
    os.environ["FSMC_CACHE_DIR"] = str(session_root / "cache")
    os.environ["PREFECT_HOME"] = str(root / "prefect")
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("FSMC_ALLOW_DOWNLOAD", None)  # tests never download
    os.environ.setdefault("FSMC_DATA_DIR", str(SHARED / "datasets"))
    os.environ.setdefault("FSMC_MODEL_DIR", str(SHARED / "models"))
    yield root


@pytest.fixture(scope="session")
def prefect_api(isolated_env):
    """One real Prefect server on a free 127.0.0.1 port for the whole session, named in ``PREFECT_API_URL``.

    Why: without a URL every `fsmc run` subprocess starts and stops a temporary server of its own (seconds each,
    two dozen times a session). Tests of the server itself, or of a missing or unreachable one, set their own URL.
    """
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_UI_ENABLED": "false"}
    with open(isolated_env / "prefect-server.log", "w") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for_url(f"{api}/health")
        os.environ["PREFECT_API_URL"] = api
        yield api
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()


@pytest.fixture(autouse=True)
def prefect_for_integration_tests(request):
    """Integration tests run their flows against the session's Prefect server (:func:`prefect_api`)."""
    if request.node.get_closest_marker("integration"):
        request.getfixturevalue("prefect_api")


@pytest.fixture(scope="session")
def shared_data():
    """The CIFAR-10 / Tiny-ImageNet files and CIFAR ResNet weights (../shared in CI)."""
    data = Path(os.environ["FSMC_DATA_DIR"])
    if not (data / "cifar10" / "train.npz").is_file():
        message = f"CIFAR-10 tests need the data files {data / 'cifar10'}/{{classes.json,train.npz,test.npz}}: set FSMC_DATA_DIR"
        # `make test-fast` runs where ../shared may be absent; the whole suite (CI's `make test`) must not skip.
        if os.environ.get("FSMC_TESTS_SKIP_MISSING_DATA") == "1":
            pytest.skip(f"{message} (skipped: FSMC_TESTS_SKIP_MISSING_DATA=1, as `make test-fast` sets it).")
        pytest.fail(f"{message}.")
    return data


@pytest.fixture(scope="session")
def cifar_params(shared_data):
    """CIFAR-10 params at a test budget: ResNet-20 (JPEG-adapted) teacher, short recovery, test subset."""
    from fsmc.config import load_params

    return load_params(
        REPO / "params.yaml",
        ["dataset=cifar10", "teacher=resnet20-jpeg", "k_max=20", "budget=2x", "recover.steps=40", "max_test_images=1000"],
    )


# The one budget of every test that needs *a* trained digits student: the same teacher and recovery everywhere, so
# a stage one test (or `fsmc run` subprocess) finished is reused from the session's stage cache by the others.
TEST_BUDGET = ["teacher.epochs=15", "recover.steps=120", "ship.timing_seconds=0.3"]  # latency: correctness only in tests
TEST_BUDGET_CLI = [arg for override in TEST_BUDGET for arg in ("--set", override)]


@pytest.fixture(scope="session")
def small_params():
    """Default params at the test budget (:data:`TEST_BUDGET`)."""
    from fsmc.config import load_params

    return load_params(REPO / "params.yaml", TEST_BUDGET)


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
