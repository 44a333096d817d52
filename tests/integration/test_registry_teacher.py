"""A student fsmc registered in MLflow is the teacher of the next round: `--set teacher=models:/NAME/VERSION`."""

from __future__ import annotations

import shutil

import mlflow
import pytest

from tests.conftest import REPO, last_json, run_cli

pytestmark = pytest.mark.integration

SHORT = ["--set", "recover.steps=60"]


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
