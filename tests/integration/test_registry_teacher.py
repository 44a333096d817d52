"""A student fsmc registered in MLflow is the teacher of the next round: `--set teacher=models:/NAME/VERSION`."""

from __future__ import annotations

import shutil

import mlflow
import pytest

from tests.conftest import REPO, TEST_BUDGET_CLI, last_json, run_cli

pytestmark = pytest.mark.integration

SHORT = TEST_BUDGET_CLI


def test_a_registered_student_is_compressed_again_with_its_lineage(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    first = run_cli(["run", "--json", *SHORT], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    round1 = last_json(first.stdout)
    uri = f"models:/{round1['registered_model']['name']}/{round1['registered_model']['version']}"

    second = run_cli(["run", "--json", "--set", f"teacher={uri}", *SHORT], cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    round2 = last_json(second.stdout)
    # the registered student, fetched as fsmc's weights-only checkpoint, is exactly the new teacher
    assert round2["teacher"]["per_class"] == round1["student"]["per_class"]
    assert round2["student"]["macs"] < 0.6 * round1["student"]["macs"]
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    try:
        client = mlflow.MlflowClient()
        tags = client.get_run(round2["mlflow_run_id"]).data.tags
        assert tags["teacher"] == uri and tags["teacher_registered_model"] == round1["registered_model"]["name"]
        assert tags["teacher_model_version"] == round1["registered_model"]["version"]
        version = client.get_model_version(round2["registered_model"]["name"], round2["registered_model"]["version"])
        assert version.tags["teacher_model_version"] == round1["registered_model"]["version"]
    finally:
        mlflow.set_tracking_uri(None)

    runs_before = sorted((tmp_path / "runs").iterdir())
    missing = run_cli(["run", "--set", "teacher=models:/fsmc-student/9", *SHORT], cwd=tmp_path)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "'models:/fsmc-student/9' is not in the MLflow registry" in missing.stderr and "has versions 1, 2" in missing.stderr
    assert sorted((tmp_path / "runs").iterdir()) == runs_before, "a refused run writes no run folder"


@pytest.mark.slow
def test_resnet56_registered_then_compressed_by_uri_matches_the_zoo_path(shared_data, tmp_path):
    """CIFAR scale: resnet56-jpeg registered as an MLflow pytorch model, then compressed by its URI (same seed)."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    cell = [
        "--set", "dataset=cifar10", "--set", "k_max=20", "--set", "budget=2x",
        "--set", "recover.steps=40", "--set", "max_test_images=1000",
        # The subject is the teacher's path: the cheapest pruning (no damage table) and short latency timing.
        "--set", "compress.allocation=uniform", "--set", "ship.timing_seconds=0.3",
    ]  # fmt: skip
    registered = run_cli(["register-teacher", "--name", "cifar-teacher", "--json", *cell, "--set", "teacher=resnet56-jpeg"], cwd=tmp_path)
    assert registered.returncode == 0, registered.stderr[-3000:]
    teacher = last_json(registered.stdout)
    assert teacher["top1"] == pytest.approx(0.8964, abs=5e-5), "the registered teacher is resnet56-jpeg (89.64 % on the 10k test split)"

    # No recovery: the subject is the teacher's path (zoo file vs registry), and pruning alone shows any difference.
    unrecovered = ["--set", "method=none", "--set", "oe=false"]
    zoo = run_cli(["run", "--json", *cell, *unrecovered, "--set", "teacher=resnet56-jpeg"], cwd=tmp_path)
    via_registry = run_cli(["run", "--json", *cell, *unrecovered, "--set", f"teacher={teacher['uri']}"], cwd=tmp_path)
    assert zoo.returncode == 0, zoo.stderr[-3000:]
    assert via_registry.returncode == 0, via_registry.stderr[-3000:]
    zoo_run, registry_run = last_json(zoo.stdout), last_json(via_registry.stdout)
    assert registry_run["teacher"]["per_class"] == zoo_run["teacher"]["per_class"]
    assert registry_run["student"]["macs"] == zoo_run["student"]["macs"]
    # Same weights, data, seed and pruning: the student is the zoo path's (on CPU, exactly).
    assert registry_run["student"]["top1"] == pytest.approx(zoo_run["student"]["top1"], abs=0.01)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    try:
        version = mlflow.MlflowClient().get_model_version(registry_run["registered_model"]["name"], registry_run["registered_model"]["version"])
        assert version.tags["teacher_registered_model"] == "cifar-teacher" and version.tags["teacher_model_version"] == "1"
    finally:
        mlflow.set_tracking_uri(None)
