"""`fsmc run` end to end on the embedded default: real Prefect engine, real MLflow store and registry."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from fsmc.data.embedded import load_digits_dataset
from fsmc.data.images import to_tensor
from tests.conftest import REPO, TEST_BUDGET_CLI, free_port, run_cli, wait_for_url

pytestmark = pytest.mark.integration
FAST = TEST_BUDGET_CLI


@pytest.fixture(scope="session")
def project(tmp_path_factory):
    """A project folder holding the shipped params.yaml, where runs and mlruns/ land."""
    root = tmp_path_factory.mktemp("project")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    return root


@pytest.fixture(scope="session")
def first_result(project):
    result = run_cli(["run", "--json", "--workspace", "runs/first", *FAST], cwd=project)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="session")
def first_run(first_result):
    return json.loads(first_result.stdout.strip().splitlines()[-1])


def test_registering_the_student_prints_no_mlflow_chatter(first_result, first_run):
    """The registry's news is in fsmc's own output (name and version), not MLflow's stderr lines."""
    assert first_run["registered_model"]["version"]
    for chatter in (
        "Successfully registered model", "Created version", "already exists. Creating a new version",
        "Pickle or CloudPickle", "is deprecated", "looks like a TorchScript archive",  # notices of the registered format
    ):  # fmt: skip
        assert chatter not in first_result.stderr


def _registered_model_accuracy(name: str, version: str) -> float:
    """Test accuracy of a registered version, loaded from the registry as a PyTorch user would, fed images in [0, 1]."""
    model = mlflow.pytorch.load_model(f"models:/{name}/{version}")
    model.eval()  # the first lines of nearly every user's inference code (a torch.export graph refused them)
    model.to("cpu")
    assert not model.training
    digits = load_digits_dataset(0.3, 0)
    with torch.no_grad():
        predictions = model(to_tensor(digits.test.images, digits.test.pixel_max)).argmax(1).numpy()
    return float(np.mean(predictions == digits.test.labels))


def test_run_json_reports_what_a_user_needs(first_run):
    for role in ("teacher", "student"):
        for key in ("top1", "balanced_acc", "minority_acc", "worst_class_acc", "per_class", "params", "macs"):
            assert key in first_run[role]
    assert len(first_run["student"]["per_class"]) == 10
    assert first_run["student"]["macs"] < first_run["teacher"]["macs"]
    assert first_run["student"]["params"] < first_run["teacher"]["params"]
    assert first_run["teacher"]["top1"] > 0.95
    assert first_run["student"]["top1"] > 0.85
    assert len(first_run["minority_classes"]) == 3
    assert first_run["wall_seconds"] > 0


def test_registered_model_comes_back_from_the_registry_and_predicts(first_run, project):
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    name, version = first_run["registered_model"]["name"], first_run["registered_model"]["version"]
    client = mlflow.MlflowClient()
    registered = client.get_model_version(name, version)
    assert registered.run_id == first_run["mlflow_run_id"]
    assert registered.tags["teacher"] == "digits-cnn"
    assert len(registered.tags["few_shot_manifest_sha256"]) == 64
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", registered.tags["git_commit"]), registered.tags["git_commit"]
    run = client.get_run(first_run["mlflow_run_id"])
    assert run.data.metrics["student.top1"] == pytest.approx(first_run["student"]["top1"])
    assert "student.class_acc.0" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(first_run["mlflow_run_id"], "pipeline/evaluate")}
    assert "pipeline/evaluate/per_class.png" in artifacts

    # What MLflow's run page shows: a name that says what ran, a span covering the pipeline, the manifests as
    # dataset inputs, the recovery loss as a chart, and a description on the run and on the registered version.
    assert run.info.run_name == "digits digits-cnn channel mir+oe"
    assert run.info.end_time - run.info.start_time >= 1000 * run.data.metrics["wall_seconds"] - 1  # the stages' time
    assert {(d.dataset.name, d.tags[0].value) for d in run.inputs.dataset_inputs} == {("few_shot", "training"), ("ood", "ood")}
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "recovery_loss")]
    assert steps == list(range(10, 121, 10))  # FAST: 120 steps, a point every 10
    for text in (run.data.tags["mlflow.note.content"], registered.description):
        assert "| top-1 % | " in text and "mir+oe" in text

    # One load and one forward pass on images in [0, 1] is all a user needs.
    assert _registered_model_accuracy(name, version) == pytest.approx(first_run["student"]["top1"])
    _check_shipped_version(first_run, name, version)


def _check_shipped_version(summary: dict, name: str, version: str) -> None:
    """The version's pyfunc runs the runtime fsmc chose, and reproduces the accuracy fsmc measured in it; latency as a user reads it."""
    shipped = summary["promotion"]["shipped"]
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    if shipped["runtime"]["runtime"] != "torch":
        assert pyfunc.metadata.flavors["python_function"]["loader_module"] == "fsmc_shipped_model"
        folder = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}"))
        assert json.loads((folder / "shipped" / "runtime.json").read_text()) == shipped["runtime"]
    digits = load_digits_dataset(0.3, 0)
    logits = pyfunc.predict(to_tensor(digits.test.images, digits.test.pixel_max).numpy())
    assert float(np.mean(logits.argmax(1) == digits.test.labels)) == pytest.approx(shipped["accuracy"]["top1"])
    assert shipped["accuracy"]["agreement_with_fp32"] >= 0.98
    for batch in ("1", "64"):
        timed = shipped["latency"]["batches"][batch]
        for role in ("teacher_eager", "teacher_same_runtime", "student_shipped"):
            assert 0 < timed[role]["median_ms"] <= timed[role]["p90_ms"] and timed[role]["batch"] == int(batch)
        assert timed["deployment_speedup"] == pytest.approx(timed["teacher_eager"]["median_ms"] / timed["student_shipped"]["median_ms"])
        # The share of the MACs ratio the speed-up reaches, from the MACs the run counted.
        assert timed["macs_pace"] == pytest.approx(timed["compression_speedup"] * summary["student"]["macs"] / summary["teacher"]["macs"])
    assert shipped["latency"]["cpu_flags"] and shipped["latency"]["torch_threads"] >= 1
    assert 0 <= shipped["latency"]["other_cpu_share"] <= 1  # what other processes took of the CPU while it was timed
    client = mlflow.MlflowClient()
    run = client.get_run(summary["mlflow_run_id"])
    assert run.data.metrics["latency.b1.student_shipped.p90_ms"] == pytest.approx(shipped["latency"]["batches"]["1"]["student_shipped"]["p90_ms"])
    assert run.data.tags["ship.runtime"] == shipped["runtime"]["runtime"]
    assert run.data.metrics["latency.b64.macs_pace"] == pytest.approx(shipped["latency"]["batches"]["64"]["macs_pace"])
    assert "deployment speed-up" in client.get_model_version(name, version).description
    assert "of MACs ratio" in client.get_model_version(name, version).description


def test_mlflow_models_serve_answers_rest_requests_with_the_students_logits(first_run, project):
    """MLflow's own way to deploy, as its users run it: `mlflow models serve -m models:/NAME/N --env-manager local`."""
    name, version = first_run["registered_model"]["name"], first_run["registered_model"]["version"]
    store = f"sqlite:///{project / 'mlruns' / 'mlflow.db'}"
    port = free_port()
    venv_bin = str(Path(sys.executable).parent)  # the venv active, as the README says: uvicorn is on PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}"}
    server = subprocess.Popen(
        ["mlflow", "models", "serve", "-m", f"models:/{name}/{version}", "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
        cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_url(f"http://127.0.0.1:{port}/ping", timeout=180)
        digits = load_digits_dataset(0.3, 0)
        images = to_tensor(digits.test.images[:5], digits.test.pixel_max)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps({"inputs": images.numpy().tolist()}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            served = np.asarray(json.loads(response.read())["predictions"], dtype=np.float32)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.communicate(timeout=60)
    mlflow.set_tracking_uri(store)
    with torch.no_grad():
        in_torch = mlflow.pytorch.load_model(f"models:/{name}/{version}").eval()(images).numpy()
    shipped = mlflow.pyfunc.load_model(f"models:/{name}/{version}").predict(images.numpy())  # the runtime fsmc shipped
    assert served.shape == (5, 10)
    np.testing.assert_allclose(served, shipped, rtol=1e-4, atol=1e-4)
    assert (served.argmax(1) == in_torch.argmax(1)).all()


async def _prefect_artifacts() -> list:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return await client.read_artifacts()


def test_the_flow_run_shows_its_result_and_mlflow_run_in_prefect(first_run):
    artifacts = asyncio.run(_prefect_artifacts())
    links = [a for a in artifacts if a.key == "mlflow-run" and first_run["mlflow_run_id"] in str(a.data)]
    assert len(links) == 1 and links[0].flow_run_id is not None
    assert f"/runs/{first_run['mlflow_run_id']}" in str(links[0].data)
    tables = [a for a in artifacts if a.key == "per-class-accuracy" and a.flow_run_id == links[0].flow_run_id]
    rows = json.loads(tables[0].data)
    assert [row["class"].rstrip(" *") for row in rows] == [*first_run["classes"], "top-1"]
    assert rows[-1]["student %"] == round(100 * first_run["student"]["top1"], 2)
    assert [row["shots"] for row in rows[:-1]] == first_run["few_shot_counts"]


def test_same_params_and_seed_give_identical_manifests_and_metrics(first_run, project):
    # --fresh: recompute every stage (the stage cache would otherwise hand back the first run's files).
    again = run_cli(["run", "--json", "--workspace", "runs/second", "--fresh", *FAST], cwd=project)
    assert again.returncode == 0, again.stderr[-3000:]
    second = json.loads(again.stdout.strip().splitlines()[-1])
    assert second["stages_reused"] == []
    for name in ("few_shot/manifest.csv", "ood/manifest.csv", "few_shot/summary.json", "evaluate/metrics.json"):
        assert (project / "runs/first" / name).read_bytes() == (project / "runs/second" / name).read_bytes(), name
    assert second["student"] == first_run["student"] and second["teacher"] == first_run["teacher"]
    assert int(second["registered_model"]["version"]) == int(first_run["registered_model"]["version"]) + 1


def test_human_output_is_a_table(project, first_run):
    result = run_cli(["run", "--workspace", "runs/table", *FAST, "--set", "method=kd"], cwd=project)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "minority acc" in result.stdout and "per-class test accuracy" in result.stdout
    assert "registered fsmc-student" in result.stdout


def test_an_int8_student_is_logged_and_registered_as_torchscript(project):
    result = run_cli(
        ["run", "--json", "--workspace", "runs/int8", "--set", "scheme=int8-ptq", "--set", "method=none", "--set", "ship.runtime=openvino", *FAST],
        cwd=project,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["student"]["bytes"] * 3.3 < summary["teacher"]["bytes"]
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    name, version = summary["registered_model"]["name"], summary["registered_model"]["version"]
    assert mlflow.MlflowClient().get_model_version(name, version).tags["scheme"] == "int8-ptq"
    assert _registered_model_accuracy(name, version) == pytest.approx(summary["student"]["top1"])
    # The int8 graph ships in OpenVINO (asked for): its pyfunc gives what fsmc measured of it.
    assert summary["promotion"]["shipped"]["runtime"]["runtime"] == "openvino"
    _check_shipped_version(summary, name, version)

    # fsmc export: ONNX checked against torch, logged to the same MLflow run.
    exported = run_cli(["export", "runs/int8", "--format", "onnx", "--json"], cwd=project)
    assert exported.returncode == 0, exported.stderr[-3000:]
    check = json.loads(exported.stdout.strip().splitlines()[-1])
    assert check["mlflow_run_id"] == summary["mlflow_run_id"] and check["prediction_agreement"] >= 0.98
    assert check["shipped_runtime"] == summary["promotion"]["shipped"]["runtime"]  # the runtime to run the file in
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(summary["mlflow_run_id"], "export")}
    assert logged == {"export/student.onnx", "export/onnx_check.json"}
    assert run_cli(["export", "runs/int8", "--format", "tflite"], cwd=project).returncode == 2


def test_promotion_gate_moves_the_alias_only_when_the_student_passes(project, first_run):
    """A lenient gate promotes; a strict one leaves the version registered, tagged with why, champion unchanged."""
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    lenient = ["--set", "max_top1_drop=1", "--set", "max_worst_class_drop=1", "--set", "min_speedup=0.01"]
    passed = run_cli(["run", "--json", "--workspace", "runs/gate-pass", *FAST, *lenient], cwd=project)
    assert passed.returncode == 0, passed.stderr[-3000:]
    promoted = json.loads(passed.stdout.strip().splitlines()[-1])
    name, version = promoted["registered_model"]["name"], promoted["registered_model"]["version"]
    assert promoted["promotion"]["passed"] is True and promoted["promotion"]["speedup"] > 0
    assert str(client.get_model_version_by_alias(name, "champion").version) == version
    assert client.get_model_version(name, version).tags["gate.passed"] == "true"

    strict = run_cli(["run", "--json", "--workspace", "runs/gate-fail", *FAST, "--set", "max_top1_drop=0", "--set", "ship.runtime=torch"], cwd=project)
    assert strict.returncode == 0, strict.stderr[-3000:]
    refused = json.loads(strict.stdout.strip().splitlines()[-1])
    refused_version = refused["registered_model"]["version"]
    assert refused["promotion"]["passed"] is False
    tags = client.get_model_version(name, refused_version).tags
    assert tags["gate.passed"] == "false" and "top-1 dropped" in tags["gate.reasons"]
    assert str(client.get_model_version_by_alias(name, "champion").version) == version  # the previous champion stays
    assert refused["promotion"]["shipped"]["runtime"]["runtime"] == "torch"  # asked for: mlflow.pytorch's own pyfunc
    _check_shipped_version(refused, name, refused_version)

    # The champion exports straight from the registry; the file lands in exports/.
    exported = run_cli(["export", f"models:/{name}@champion", "--json"], cwd=project)
    assert exported.returncode == 0, exported.stderr[-3000:]
    check = json.loads(exported.stdout.strip().splitlines()[-1])
    assert check["mlflow_run_id"] == promoted["mlflow_run_id"] and (project / check["path"]).is_file()
    missing = run_cli(["export", f"models:/{name}@no-such-alias"], cwd=project)
    assert missing.returncode == 2 and "could not be read from the tracking store" in missing.stderr


def test_a_changed_or_outside_checkpoint_is_refused_and_an_explicit_output_is_honoured(project, first_run, tmp_path):
    folder = project / "runs" / "tampered"
    shutil.copytree(project / "runs" / "first", folder)
    model = folder / "recover" / "model.pt"
    original = model.read_bytes()

    model.write_bytes(original + b"\0")  # corrupted or swapped after the run wrote it
    for command in (["export", "runs/tampered"], ["log-run", "runs/tampered"]):
        refused = run_cli(command, cwd=project)
        assert refused.returncode == 2 and "changed after the run wrote it" in refused.stderr, refused.stderr[-2000:]

    elsewhere = tmp_path / "model.pt"
    elsewhere.write_bytes(original)
    model.unlink()
    model.symlink_to(elsewhere)  # same bytes, but a file nobody named
    refused = run_cli(["export", "runs/tampered"], cwd=project)
    assert refused.returncode == 2 and "outside" in refused.stderr and str(elsewhere) in refused.stderr.replace("\n", "")

    model.unlink()
    model.write_bytes(original)
    explicit = tmp_path / "chosen" / "student.onnx"
    exported = run_cli(["export", "runs/tampered", "--output", str(explicit), "--json"], cwd=project)
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert json.loads(exported.stdout.strip().splitlines()[-1])["path"] == str(explicit) and explicit.stat().st_size > 0
