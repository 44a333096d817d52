"""Bad input: exit code 2, one clear paragraph, nothing written."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import free_port, run_cli

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("sample_few_shot.k_max=0", "k_max=0"),
        ("imbalance_ratio=0.5", "imbalance_ratio=0.5"),
        ("imbalance_ratio=30", "exceeds k_max=20"),
        ("dataset=cifar100", "cifar100"),
        ("method=sgd", "'sgd'"),
        ("compress.ratio=1.5", "compress.ratio=1.5"),
        ("not_a_key=3", "not_a_key"),
        ("recover.steps=many", "'many'"),
        ("scheme=prune", "compress.scheme='prune' is unknown; valid schemes: channel, unstructured, int8-ptq, int8-qat, distill"),
        ("method=fskd --set scheme=int8-ptq", "'fskd' does not apply to compress.scheme='int8-ptq'"),
        ("recover.mu=-0.1", "recover.mu=-0.1 must lie in [0, 1]"),
        ("recover.temperature=-1", "recover.temperature=-1.0 must be positive"),
        ("sample_few_shot.seed=-1", "sample_few_shot.seed=-1 is not a valid seed"),
        ("recover.seed=4294967296", "recover.seed=4294967296 is not a valid seed"),
        ("recover.lr=-0.1", "recover.lr=-0.1 must be positive"),
        ("teacher=timm:res/net", "is not a timm architecture name; write timm:NAME"),
        ("teacher=timm:resnet18", "needs its trained weights: set data.teacher_weights=PATH"),
        # Counts checked against the data (digits: 10 classes, ~125 training images each, 540 test images).
        ("evaluate.minority_classes=11", "evaluate.minority_classes=11 asks for more minority classes than digits has (10); give 1..10"),
        ("sample_few_shot.k_max=500", "lower sample_few_shot.k_max (now 500): any value up to"),
        ("evaluate.max_test_images=100000", "evaluate.max_test_images=100000 exceeds the 540 test images of digits"),
    ],
)
def test_bad_input_exits_2_before_any_work(tmp_path, override, named):
    sets = [arg for pair in override.split(" --set ") for arg in ("--set", pair)]
    result = run_cli(["run", *sets], cwd=tmp_path)
    assert result.returncode == 2
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [], "bad input must not write anything"


def test_error_inside_the_flow_reaches_the_user_cleanly(tmp_path):
    # The pool size is only known once the flow runs: the task's error must surface as-is.
    result = run_cli(["run", "--set", "curate_ood.budget=100000", "--workspace", "runs/x"], cwd=tmp_path)
    assert result.returncode == 2
    assert "asks for 100000 images but the pool has only" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs/x").exists(), "a failed run must not leave a half-written run folder"



@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--name", "cars classifier"], "--name 'cars classifier' is not a registered model name"),
        (["--name", "again", "--set", "teacher=models:/fsmc-student/1"], "is already in the registry"),
        (["--name", "cars", "--set", "teacher=torchvision:resnet18", "--set", "teacher_weights=/nonexistent/w.pt"], "/nonexistent/w.pt"),
    ],
)
def test_register_teacher_refuses_bad_input_before_any_work(tmp_path, args, named):
    result = run_cli(["register-teacher", *args], cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert named in result.stderr
    logged = list((tmp_path / "mlruns").rglob("MLmodel")) + list((tmp_path / "mlruns").rglob("model.pt"))
    assert logged == [], "a refused registration logs no model"


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    """Inputs of the wrong kind, outside the folder a command runs in (so "nothing written" can be checked there)."""
    root = tmp_path_factory.mktemp("bad-inputs")
    (root / "notes.txt").write_text("just text\n")
    (root / "syntax.yaml").write_text("data: [unclosed\n")
    (root / "empty").mkdir()
    corrupt = root / "corrupt-run"  # every file a finished run folder needs, none of them fsmc's
    for name in ("params.yaml", "run.json", "evaluate/metrics.json", "recover/model.pt"):
        (corrupt / name).parent.mkdir(parents=True, exist_ok=True)
        (corrupt / name).write_text("garbage\n")
    return root


def _closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # free: nothing listens there


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["run", "--params", "{root}/syntax.yaml"], "syntax.yaml' is not valid YAML"),
        (["run", "--workspace", "{root}/notes.txt"], "--workspace {root}/notes.txt is a file"),
        (["run", "--workspace", "{root}/notes.txt/run"], "{root}/notes.txt is a file"),
        (["run", "--set", "teacher=models:/nosuch/1"], "models:/nosuch/1 names a registered model, but the tracking store"),
        (["run", "--set", "tracking.registered_model=my model"], "tracking.registered_model='my model'"),
        (["benchmark", "--params", "{root}/missing.yaml"], "missing.yaml' does not exist"),
        (["benchmark", "--out", "{root}/notes.txt"], "--out {root}/notes.txt is a file"),
        (["benchmark", "--workers", "100000"], "--workers 100000 is more than"),
        (["export", "{root}/corrupt-run"], "run.json is not the JSON object fsmc writes"),
        (["export", "{root}/empty", "--output", "{root}/empty"], "--output {root}/empty is a folder"),
        (["export", "models:/bad uri"], "'models:/bad uri' is not a registry URI"),
        (["log-run", "{root}/corrupt-run"], "run.json is not the JSON object fsmc writes"),
        (["pull-teacher", "models:/nosuch/1"], "the tracking store"),
        (["ui", "--port", "70000"], "--port 70000 is not a TCP port"),
        (["server", "start", "--port", "0"], "--port 0 is not a TCP port"),
        (["ui", "--host", "999.1.1.1", "--port", "5123"], "--host 999.1.1.1 --port 5123"),
        (["deploy", "run", "nightly", "--timeout", "-5"], "--timeout -5 is negative"),
    ],
)
def test_bad_cli_input_exits_2_and_writes_nothing(tmp_path, bad_files, args, named):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {"PREFECT_API_URL": _closed_port_url() + "/api"} if args[0] == "deploy" else None
    result = run_cli([a.format(root=bad_files) for a in args], cwd=cwd, env=env)
    assert result.returncode == 2, result.stderr
    assert named.format(root=bad_files) in result.stderr
    assert "Traceback" not in result.stderr
    assert list(cwd.iterdir()) == [], "bad input must not write anything (an empty mlruns/ store included)"


@pytest.mark.parametrize("command", [["serve"], ["deploy", "run", "nightly"]])
def test_unreachable_prefect_server_is_named(tmp_path, command):
    url = _closed_port_url() + "/api"
    result = run_cli(command, cwd=tmp_path, env={"PREFECT_API_URL": url})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"No Prefect server answers at PREFECT_API_URL={url}" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["ui", "server start"])
def test_port_in_use_is_named(tmp_path, command):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli([*command.split(), "--port", str(port)], cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"--port {port}" in result.stderr and "the port is taken" in result.stderr
    assert list(tmp_path.iterdir()) == []
