"""Bad input: exit code 2, one clear paragraph, nothing written."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli

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
