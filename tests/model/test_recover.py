"""Recovery (kd and oe-kd) improves the pruned student on held-out test data."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import torch

from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.models.checkpoint import load_checkpoint
from fsmc.runtime import predict_logits
from fsmc.stages import compress, recover, teacher
from fsmc.stages.workspace import Workspace


@pytest.fixture(scope="module")
def pruned_workspace(data_workspace, small_params, tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("ws-pruned"))
    shutil.copytree(data_workspace.root, ws.root, dirs_exist_ok=True)
    teacher.run(small_params, ws)
    compress.run(small_params, ws)
    return ws


def _test_accuracy(path, params) -> float:
    model, _, _ = load_checkpoint(path)
    dataset = load_dataset(params.data)
    predictions = predict_logits(model, to_tensor(dataset.test.images, dataset.test.pixel_max)).argmax(1)
    return float((predictions == torch.from_numpy(dataset.test.labels)).float().mean())


@pytest.mark.parametrize(("method", "oe"), [("kd", False), ("oe-kd", False), ("bp", False), ("bp", True)])
def test_recovery_beats_the_unrecovered_pruned_student(pruned_workspace, small_params, method, oe):
    params = dataclasses.replace(small_params, recover=dataclasses.replace(small_params.recover, method=method, oe=oe))
    report = recover.run(params, pruned_workspace)
    pruned = _test_accuracy(pruned_workspace.pruned_model, params)
    recovered = _test_accuracy(pruned_workspace.student_model, params)
    assert recovered > pruned + 0.05, (pruned, recovered)
    assert report["method"] == params.recover.label
    if params.recover.uses_oe:
        assert report["ood_size"] > 0 and report["holdout_size"] > 0
        assert report["holdout_curve"], "early stopping never checked the held-out slice"
        assert report["best_step"] <= report["steps_run"]
    else:
        assert report["ood_size"] == 0 and report["holdout_size"] == 0


def test_teacher_is_cached_across_runs(data_workspace, small_params, tmp_path):
    first = Workspace(tmp_path / "a")
    second = Workspace(tmp_path / "b")
    one = teacher.run(small_params, first)
    two = teacher.run(small_params, second)
    assert two["cache_hit"] and two["cache_key"] == one["cache_key"]
    assert first.teacher_model.read_bytes() == second.teacher_model.read_bytes()
    other = dataclasses.replace(small_params, teacher=dataclasses.replace(small_params.teacher, epochs=3))
    assert teacher.run(other, Workspace(tmp_path / "c"))["cache_key"] != one["cache_key"]
