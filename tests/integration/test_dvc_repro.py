"""`dvc repro` in a temporary copy of the repo reproduces the flow's metrics exactly."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fsmc.stages import CACHED_PIPELINE
from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.integration
FAST = {"recover.steps": "120", "teacher.epochs": "15"}


def _sh(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # The stages call `python -m fsmc.stages`: the venv's python must come first on PATH.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, f"{args}: {result.stdout[-2000:]} {result.stderr[-2000:]}"
    return result


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory):
    """The tracked files of this repo (minus DVC outputs) in a fresh git repo."""
    root = tmp_path_factory.mktemp("dvc") / "repo"  # its parent also holds the default remote and a clone
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        if name.startswith("data/") and name != "data/README.md" or name == "dvc.lock":
            continue  # outputs are what we reproduce
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    params = (root / "params.yaml").read_text()
    params = params.replace("  steps: 400", f"  steps: {FAST['recover.steps']}").replace(
        "  epochs: 30", f"  epochs: {FAST['teacher.epochs']}"
    )
    (root / "params.yaml").write_text(params)
    _sh(["git", "init", "-q"], root)
    _sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], root)
    _sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"], root)
    return root


def test_dvc_repro_matches_the_flow_and_is_idempotent(repo_copy):
    _sh(["dvc", "repro"], repo_copy)
    metrics = json.loads((repo_copy / "data/evaluate/metrics.json").read_text())

    flow = run_cli(["run", "--json", "--workspace", "runs/flow"], cwd=repo_copy)
    assert flow.returncode == 0, flow.stderr[-3000:]
    flow_metrics = json.loads((repo_copy / "runs/flow/evaluate/metrics.json").read_text())
    assert metrics == flow_metrics
    assert (repo_copy / "data/few_shot/manifest.csv").read_bytes() == (repo_copy / "runs/flow/few_shot/manifest.csv").read_bytes()

    second = _sh(["dvc", "repro"], repo_copy)
    # record_inputs re-hashes the raw inputs every time; nothing else runs when they are unchanged
    assert re.findall(r"Running stage '(\w+)'", second.stdout) == ["record_inputs"]
    assert "'teacher' didn't change, skipping" in second.stdout


def test_dvc_exp_run_with_a_param_override(repo_copy):
    _sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], repo_copy)
    _sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "repro", "--allow-empty"], repo_copy)
    result = _sh(["dvc", "exp", "run", "-S", "recover.method=bp"], repo_copy)
    assert "Running stage 'recover'" in result.stdout
    assert "Running stage 'teacher'" not in result.stdout  # untouched stages are reused
    summary = json.loads((repo_copy / "data/recover/summary.json").read_text())
    assert summary["method"] == "bp+oe"


def test_dvc_repro_reruns_when_the_users_teacher_weights_change_at_the_same_path(repo_copy):
    _sh(["dvc", "repro"], repo_copy)
    weights = repo_copy / "my-teacher.pt"  # the first round's student, as a user's teacher file
    shutil.copy(repo_copy / "data/recover/model.pt", weights)
    original = (repo_copy / "params.yaml").read_text()
    try:
        # (regexes: an earlier `dvc exp run -S` may have rewritten the file's quoting)
        params = re.sub(r"(?m)^(\s+teacher:) \S+", r"\1 checkpoint", original, count=1)
        params = re.sub(r"(?m)^(\s+teacher_weights:) \S+", r"\1 my-teacher.pt", params, count=1)
        assert "teacher: checkpoint" in params and "teacher_weights: my-teacher.pt" in params
        (repo_copy / "params.yaml").write_text(params)
        first = _sh(["dvc", "repro"], repo_copy)
        assert "Running stage 'teacher'" in first.stdout
        same = _sh(["dvc", "repro"], repo_copy)
        assert "Running stage 'teacher'" not in same.stdout
        shutil.copy(repo_copy / "data/compress/model.pt", weights)  # retrained in place: same path, other bytes
        changed = _sh(["dvc", "repro"], repo_copy)
        assert "Running stage 'teacher'" in changed.stdout and "Running stage 'evaluate'" in changed.stdout
        sources = json.loads((repo_copy / "data/inputs/sources.json").read_text())
        assert sources["teacher_weights"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    finally:
        (repo_copy / "params.yaml").write_text(original)


def test_dvc_push_then_pull_into_a_fresh_clone_brings_back_every_output(repo_copy):
    """Lineage off this disk: the default remote (a folder beside the project) takes what dvc.lock names, and a
    fresh clone of the commit pulls every output back, byte for byte, with the checksums dvc.lock records."""
    _sh(["dvc", "repro"], repo_copy)  # the committed params' outputs (an earlier test ran others); DVC's run cache
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    _sh([*git, "add", "-A"], repo_copy)
    _sh([*git, "commit", "-qm", "outputs", "--allow-empty"], repo_copy)
    pushed = _sh(["dvc", "push"], repo_copy)
    store = repo_copy.parent / "fsmc-dvc-store"
    assert store.is_dir() and any(store.rglob("*")), pushed.stdout

    clone = repo_copy.parent / "clone"
    _sh(["git", "clone", "-q", str(repo_copy), str(clone)], repo_copy.parent)
    assert not (clone / "data/teacher/model.pt").exists()  # git holds the lock, not the models
    _sh(["dvc", "pull"], clone)
    lock = yaml.safe_load((clone / "dvc.lock").read_text())
    outs = [out for stage in lock["stages"].values() for out in stage.get("outs", [])]
    assert {"data/teacher/model.pt", "data/recover/model.pt", "data/few_shot/manifest.csv"} <= {out["path"] for out in outs}
    for out in outs:
        pulled = (clone / out["path"]).read_bytes()
        assert hashlib.md5(pulled).hexdigest() == out["md5"], out["path"]
        assert pulled == (repo_copy / out["path"]).read_bytes(), out["path"]


def test_an_edited_library_file_reruns_exactly_the_stages_that_run_it_in_dvc_and_in_the_flow(repo_copy):
    """Each stage's code is declared once (fsmc.stage_io.stage_code: its import closure): `dvc repro`'s deps and
    the flow's stage cache derive from it, so an edit to the recovery loop re-runs recover, and nothing else
    (its student comes out byte-identical, so evaluate is not re-run either), in both."""
    edited = repo_copy / "fsmc/recover/loop.py"
    copy_code = {"PYTHONPATH": str(repo_copy)}  # the flow runs the copy's code, as `dvc repro` in the copy does
    _sh(["dvc", "repro"], repo_copy)
    before = run_cli(["run", "--json", "--workspace", "runs/before-edit"], cwd=repo_copy, env=copy_code)
    assert before.returncode == 0, before.stderr[-3000:]
    original = edited.read_text()
    try:
        edited.write_text(original + "\n# An edit that changes no behaviour: the code, and so the stage's key, changed.\n")
        repro = _sh(["dvc", "repro"], repo_copy)
        assert re.findall(r"Running stage '(\w+)'", repro.stdout) == ["record_inputs", "recover"]
        after = run_cli(["run", "--json", "--workspace", "runs/after-edit"], cwd=repo_copy, env=copy_code)
        assert after.returncode == 0, after.stderr[-3000:]
        reused = json.loads(after.stdout.strip().splitlines()[-1])["stages_reused"]
        assert reused == [stage for stage in CACHED_PIPELINE if stage != "recover"]
    finally:
        edited.write_text(original)
