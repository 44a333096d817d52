"""`fsmc run` on a user's own model and data: PNG folders at 64x64 and a torchvision state dict."""

from __future__ import annotations

import hashlib
import json
import shutil

import mlflow
import numpy as np
import pytest
import torch
import torchvision
import yaml

from fsmc.config import DataParams
from fsmc.data.embedded import load_photo_patches
from fsmc.data.fitting import fit_images
from fsmc.data.sources import load_dataset
from tests.conftest import REPO, last_json, run_cli
from tests.user_models import train_torchvision_on_digits, write_png_folder

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def user_project(tmp_path_factory):
    """A user's project: train/test PNG folders of digits at 64x64 RGB, an OOD folder, a MobileNetV3 state dict."""
    root = tmp_path_factory.mktemp("user-project")
    digits = load_dataset(DataParams(image_size=64, image_channels=3))
    classes = list(digits.classes)
    for split, images in (("train", digits.train), ("test", digits.test)):
        write_png_folder(root / "digits" / split, images.images, images.labels, classes, images.pixel_max)
    patches = fit_images(load_photo_patches(), 64, 3)
    write_png_folder(root / "unlabelled", patches.images[:600], patches.labels[:600] * 0, ["photos"], patches.pixel_max)
    accuracy = train_torchvision_on_digits("mobilenet_v3_small", 64, 8, root / "mnv3-digits.pt")
    assert accuracy > 0.7, f"the fixture teacher itself is bad ({accuracy:.3f})"
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    return root


def _user_run(project, *extra: str) -> list[str]:
    return [
        "run", "--json", "--workspace", "runs/mine",
        "--set", f"dataset=folder:{project / 'digits'}", "--set", f"ood_pool=folder:{project / 'unlabelled'}",
        "--set", "teacher=torchvision:mobilenet_v3_small", "--set", "image_size=64", *extra,
    ]


def test_a_users_model_on_a_png_folder_is_compressed_registered_and_traced_to_its_weights(user_project):
    weights = user_project / "mnv3-digits.pt"
    result = run_cli(_user_run(user_project, "--set", f"teacher_weights={weights}", "--set", "recover.steps=60"), cwd=user_project)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    teacher, student = summary["teacher"], summary["student"]
    assert teacher["top1"] > 0.7 and student["macs"] < 0.6 * teacher["macs"]
    # Pruned, the MobileNetV3 is at chance (0.10); 60 steps of mir+oe must bring it far above (its BatchNorm
    # momentum of 0.01 once left it there: recovery trains BN with momentum 0.1).
    assert student["top1"] > 0.6
    mlflow.set_tracking_uri(f"sqlite:///{user_project / 'mlruns' / 'mlflow.db'}")
    try:
        run = mlflow.MlflowClient().get_run(summary["mlflow_run_id"])
        assert run.data.tags["teacher"] == "torchvision:mobilenet_v3_small"
        assert run.data.tags["teacher_weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    finally:
        mlflow.set_tracking_uri(None)


def test_a_pickled_module_is_refused_before_any_work(user_project, tmp_path):
    pickled = tmp_path / "whole-model.pt"
    torch.save(torchvision.models.mobilenet_v3_small(num_classes=10), pickled)
    project = tmp_path / "project"
    project.mkdir()
    result = run_cli(_user_run(user_project, "--set", f"teacher_weights={pickled}"), cwd=project)
    assert result.returncode == 2
    assert "torch.save(model.state_dict(), PATH)" in result.stderr and "Traceback" not in result.stderr
    assert list(project.iterdir()) == [], "bad input must not write anything"


def test_a_registered_own_model_is_compressed_by_its_uri_with_its_input_contract(user_project, tmp_path):
    """The issue's first command: `fsmc run --set teacher=models:/cars-classifier/1 --set dataset=folder:...`."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "params.yaml", project / "params.yaml")
    data = ["--set", f"dataset=folder:{user_project / 'digits'}", "--set", f"ood_pool=folder:{user_project / 'unlabelled'}"]
    registered = run_cli(
        ["register-teacher", "--name", "cars-classifier", "--json", *data, "--set", "teacher=torchvision:mobilenet_v3_small",
         "--set", f"teacher_weights={user_project / 'mnv3-digits.pt'}", "--set", "image_size=64"],
        cwd=project,
    )  # fmt: skip
    assert registered.returncode == 0, registered.stderr[-3000:]
    teacher = last_json(registered.stdout)
    assert teacher["uri"] == "models:/cars-classifier/1" and teacher["top1"] > 0.7

    # No image_size: the registered signature (3 x 64 x 64) and class names are the teacher's input contract.
    result = run_cli(["run", "--json", *data, "--set", f"teacher={teacher['uri']}", "--set", "recover.steps=60"], cwd=project)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = last_json(result.stdout)
    assert summary["teacher"]["top1"] == pytest.approx(teacher["top1"], abs=1e-9), "the registered teacher is the one compressed"
    assert summary["student"]["top1"] > 0.6 and summary["student"]["macs"] < 0.6 * summary["teacher"]["macs"]
    run_params = yaml.safe_load((project / summary["workspace"] / "params.yaml").read_text())
    assert run_params["data"]["image_size"] == 64, "the run records the size it took from the registry"

    # The same digits under other class names: per-class results would be mislabelled, so nothing starts.
    renamed = tmp_path / "renamed"
    for split in ("train", "test"):
        for folder in (user_project / "digits" / split).iterdir():
            shutil.copytree(folder, renamed / split / f"digit-{folder.name}")
    runs_before = sorted((project / "runs").iterdir())
    refused = run_cli(["run", "--set", f"dataset=folder:{renamed}", *data[2:], "--set", f"teacher={teacher['uri']}"], cwd=project)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "registered for the classes ['0', '1', '2'" in refused.stderr and "'digit-0'" in refused.stderr
    wrong_size = run_cli(["run", *data, "--set", f"teacher={teacher['uri']}", "--set", "image_size=32"], cwd=project)
    assert wrong_size.returncode == 2
    assert "data.image_size=32 but the teacher models:/cars-classifier/1 was registered for 64x64" in wrong_size.stderr
    assert sorted((project / "runs").iterdir()) == runs_before, "refused runs write no run folder"


def test_a_pickled_registry_model_is_compressed_only_when_the_registry_is_trusted(user_project, tmp_path):
    """A model another tool registered with plain `mlflow.pytorch.log_model` (a pickle): refused by default,
    compressed with `--set teacher.trust_pickle=true` through the same input contract, pruning and lineage."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "params.yaml", project / "params.yaml")
    model = torchvision.models.mobilenet_v3_small(num_classes=10)
    model.load_state_dict(torch.load(user_project / "mnv3-digits.pt", weights_only=True))
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    try:
        other_tool = mlflow.create_experiment("another-tool", artifact_location=(project / "mlruns" / "another-tool").as_uri())
        with mlflow.start_run(experiment_id=other_tool):
            # The whole module pickled (MLflow 2.x's only format); the example gives the 3 x 64 x 64 signature.
            mlflow.pytorch.log_model(
                model.eval(),
                name="model",
                registered_model_name="pickled-cars",
                serialization_format="pickle",
                input_example=np.zeros((1, 3, 64, 64), np.float32),
            )
    finally:
        mlflow.set_tracking_uri(None)
    data = ["--set", f"dataset=folder:{user_project / 'digits'}", "--set", f"ood_pool=folder:{user_project / 'unlabelled'}"]
    uri = "models:/pickled-cars/1"

    refused = run_cli(["run", *data, "--set", f"teacher={uri}"], cwd=project)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "does not unpickle" in refused.stderr and "--set teacher.trust_pickle=true" in refused.stderr
    assert not (project / "runs").exists(), "a refused run writes no run folder"
    assert run_cli(["pull-teacher", uri], cwd=project).returncode == 2

    # No recovery: the subject is the teacher's path (recovery of this teacher is the PNG-folder test's).
    unrecovered = ["--set", "method=none", "--set", "oe=false"]
    trusted = run_cli(["run", "--json", *data, "--set", f"teacher={uri}", "--set", "teacher.trust_pickle=true", *unrecovered], cwd=project)
    assert trusted.returncode == 0, trusted.stderr[-3000:]
    summary = last_json(trusted.stdout)
    assert summary["teacher"]["top1"] > 0.7, "the unpickled module is the trained teacher (chance is 0.10)"
    assert summary["student"]["macs"] < 0.6 * summary["teacher"]["macs"], "and it was pruned"
    run_params = yaml.safe_load((project / summary["workspace"] / "params.yaml").read_text())
    assert run_params["data"]["image_size"] == 64, "the registered signature is the pickled teacher's input contract"
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    try:
        client = mlflow.MlflowClient()
        tags = client.get_run(summary["mlflow_run_id"]).data.tags
        assert tags["fsmc.trust_pickle"] == "true" and tags["teacher_format"] == "pickle"
        assert tags["teacher_registered_model"] == "pickled-cars" and tags["teacher_model_version"] == "1"
        student = summary["registered_model"]
        assert client.get_model_version(student["name"], student["version"]).tags["teacher_model_version"] == "1"
    finally:
        mlflow.set_tracking_uri(None)

    pulled = run_cli(["pull-teacher", uri, "--set", "teacher.trust_pickle=true"], cwd=project)
    assert pulled.returncode == 0, pulled.stderr[-3000:]
    assert "a trusted pickled module" in pulled.stdout
