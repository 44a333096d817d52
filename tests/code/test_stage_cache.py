"""The stage cache: reuse only on identical inputs, whole entries only, and agreement with dvc.yaml."""

from __future__ import annotations

import pytest
import yaml

from fsmc.config import load_params
from fsmc.dvc_yaml import render
from fsmc.stage_cache import recorded_seconds, run_stage
from fsmc.stage_io import STAGE_IO, stage_code
from fsmc.stages import STAGES
from fsmc.workspace import Workspace
from tests.conftest import REPO


def _workspace_with_inputs(root, tag: str) -> Workspace:
    """Input files unique to ``tag``: the session's stage cache holds entries of other tests."""
    ws = Workspace(root)
    for name in STAGE_IO["validate"].inputs:
        path = getattr(ws, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{tag} {name}\n")
    return ws


class CountingWorker:
    """Stands in for the validate worker: writes its report and counts how often it really ran."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, params, ws: Workspace) -> dict:
        self.calls += 1
        ws.validation_report.parent.mkdir(parents=True, exist_ok=True)
        ws.validation_report.write_text(f"report {self.calls}\n")
        return {"success": True, "call": self.calls}


def test_same_inputs_are_restored_and_changed_inputs_recompute(tmp_path, small_params):
    worker = CountingWorker()
    first = _workspace_with_inputs(tmp_path / "a", "reuse")
    assert run_stage("validate", worker, small_params, first) == ({"success": True, "call": 1}, False)

    second = _workspace_with_inputs(tmp_path / "b", "reuse")
    assert run_stage("validate", worker, small_params, second) == ({"success": True, "call": 1}, True)
    assert worker.calls == 1
    assert second.validation_report.read_text() == "report 1\n"

    second.ood_manifest.write_text("another pool\n")  # an upstream file changed: not the same stage any more
    assert run_stage("validate", worker, small_params, second)[1] is False
    assert second.validation_report.read_text() == "report 2\n"

    other_params = load_params(REPO / "params.yaml", ["recover.steps=120", "teacher.epochs=15", "k_max=40"])  # a section it reads
    assert run_stage("validate", worker, other_params, first)[1] is False
    assert run_stage("validate", worker, small_params, first, reuse=False)[1] is False
    assert worker.calls == 4


def test_a_restored_stage_reports_the_seconds_it_took_when_computed(tmp_path, small_params):
    """A resumed search budgets its rounds by what recomputing them would cost, not by the restore's milliseconds:
    the restored entry gives back the seconds recorded when the stage ran, not a new measurement."""
    first, second = _workspace_with_inputs(tmp_path / "a", "seconds"), _workspace_with_inputs(tmp_path / "b", "seconds")
    assert recorded_seconds("validate", small_params, first) is None  # nothing computed yet
    run_stage("validate", CountingWorker(), small_params, first)
    computed = recorded_seconds("validate", small_params, first)
    assert computed is not None and computed >= 0
    assert run_stage("validate", CountingWorker(), small_params, second)[1] is True  # restored
    assert recorded_seconds("validate", small_params, second) == computed


def test_a_failed_stage_stores_nothing(tmp_path, small_params):
    def broken(params, ws):
        ws.validation_report.parent.mkdir(parents=True, exist_ok=True)
        ws.validation_report.write_text("half")
        raise RuntimeError("expectation failed")

    ws = _workspace_with_inputs(tmp_path / "a", "failed")
    with pytest.raises(RuntimeError, match="expectation failed"):
        run_stage("validate", broken, small_params, ws)
    worker = CountingWorker()
    assert run_stage("validate", worker, small_params, ws)[1] is False and worker.calls == 1


def test_dvc_yaml_is_rendered_from_the_stage_declarations():
    """dvc.yaml is what `python -m fsmc.dvc_yaml` writes: the flow's cache keys and `dvc repro` read the same files."""
    assert (REPO / "dvc.yaml").read_text() == render(), "dvc.yaml is stale: run `make dvc-yaml`"
    assert all(callable(STAGES[name]) for name in STAGE_IO), "every declared stage has a module with run()"
    stages = yaml.safe_load(render())["stages"]
    inputs = ["data/teacher/model.pt", "data/recover/model.pt", "data/compress/summary.json", "data/few_shot/summary.json"]
    assert stages["evaluate"]["deps"] == [*stage_code("evaluate"), *inputs]
    assert stages["evaluate"]["metrics"] == [{"data/evaluate/metrics.json": {"cache": False}}]
    assert stages["record_inputs"]["always_changed"] is True


def test_each_stage_depends_on_the_code_it_imports_and_on_no_other_stage():
    """A stage's code is its module's import closure in fsmc/: complete (the files that resize the teacher's
    training images once went missing from a hand-kept list, and a stale teacher was reused) and narrow
    (editing the recovery loop does not re-run sampling)."""
    teacher = stage_code("teacher")
    assert {"fsmc/data/sources.py", "fsmc/data/fitting.py", "fsmc/train/teacher.py", "fsmc/stages/teacher.py"} <= set(teacher)
    assert "fsmc/recover/loop.py" in stage_code("recover")
    runs_the_loop = [name for name in STAGE_IO if "fsmc/recover/loop.py" in stage_code(name)]
    assert runs_the_loop == ["recover"]
    for name in STAGE_IO:
        others = {f"fsmc/stages/{other}.py" for other in STAGE_IO if other != name}
        assert not others & set(stage_code(name)), f"stage {name} imports another stage's module"
