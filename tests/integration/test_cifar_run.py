"""`fsmc run` on CIFAR-10 with a pretrained teacher and the Tiny-ImageNet OOD pool, at a test budget."""

from __future__ import annotations

import json
import os
import shutil

import mlflow
import pytest

from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.integration
CIFAR = [
    "--set", "dataset=cifar10", "--set", "teacher=resnet20-jpeg", "--set", "k_max=20", "--set", "budget=2x",
    "--set", "recover.steps=40", "--set", "max_test_images=1000",
]  # fmt: skip


def test_cifar10_run_registers_a_student(shared_data, tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    models = shared_data.parent / "models"
    result = run_cli(
        ["run", "--json", "--workspace", "runs/c", "--data-dir", str(shared_data), "--model-dir", str(models), *CIFAR],
        cwd=tmp_path,
        env={"FSMC_DATA_DIR": "", "FSMC_MODEL_DIR": ""},  # the CLI options alone must be enough
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["classes"][0] == "airplane"
    assert summary["teacher"]["top1"] > 0.8
    assert summary["student"]["macs"] < 0.6 * summary["teacher"]["macs"]
    assert summary["student"]["top1"] > 0.5
    ood = json.loads((tmp_path / "runs/c/ood/summary.json").read_text())
    assert ood["pool"] == "tinyimagenet" and ood["excluded_class_removed"] == 24 * 70
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    version = mlflow.MlflowClient().get_model_version(summary["registered_model"]["name"], summary["registered_model"]["version"])
    assert version.tags["teacher"] == "resnet20-jpeg" and version.tags["dataset"] == "cifar10"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"FSMC_DATA_DIR": "/nonexistent/data"}, "/nonexistent/data/cifar10/classes.json"),
        ({"FSMC_MODEL_DIR": "/nonexistent/models"}, "/nonexistent/models/cifar10-jpeg/resnet20-249d1d06.pt"),
    ],
)
def test_missing_inputs_fail_before_any_work(tmp_path, shared_data, env, named):
    result = run_cli(["run", *CIFAR], cwd=tmp_path, env={**{k: os.environ[k] for k in ("FSMC_DATA_DIR", "FSMC_MODEL_DIR")}, **env})
    assert result.returncode == 2
    assert named in result.stderr
    assert list(tmp_path.iterdir()) == []
