"""CIFAR-10 and Tiny-ImageNet from the data directory: verified, validated, curated."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from fsmc.config import DataParams
from fsmc.data.npz_source import read_split
from fsmc.data.sources import load_dataset, load_ood_pool
from fsmc.errors import FsmcError
from fsmc.stages import curate_ood, sample_few_shot, validate
from fsmc.workspace import Workspace


def test_cifar10_loads_complete_and_verified(shared_data):
    dataset = load_dataset(DataParams(dataset="cifar10", teacher="resnet56"))
    assert dataset.classes[0] == "airplane" and dataset.num_classes == 10
    assert dataset.train.images.shape == (50000, 32, 32, 3) and len(dataset.test) == 10000
    assert np.bincount(dataset.test.labels).tolist() == [1000] * 10


@pytest.fixture(scope="module")
def cifar_workspace(cifar_params, tmp_path_factory):
    from fsmc.stages import teacher

    ws = Workspace(tmp_path_factory.mktemp("ws-cifar"))
    sample_few_shot.run(cifar_params, ws)
    teacher.run(cifar_params, ws)
    summary = curate_ood.run(cifar_params, ws)
    return ws, summary


def test_ood_curation_drops_overlap_classes_and_id_images(cifar_workspace, cifar_params):
    ws, summary = cifar_workspace
    pool = load_ood_pool(cifar_params.data)
    assert len(pool.excluded_labels) == 24
    # 24 overlap classes x (50 val + 20 train_subset) images leave the pool before drawing.
    assert summary["excluded_class_removed"] == 24 * 70
    manifest = ws.ood_manifest.read_text().splitlines()[1:]
    labels = {int(line.split(",")[2]) for line in manifest}
    assert not labels & pool.excluded_labels
    assert len(manifest) == summary["size"] == 2 * sum(20 - n for n in _counts(ws))
    assert validate.run(cifar_params, ws)["success"]


def _counts(ws):
    import json

    return json.loads(ws.few_shot_summary.read_text())["counts"]


def test_cifar_manifests_are_byte_identical_on_rerun(cifar_workspace, cifar_params, tmp_path):
    ws, _ = cifar_workspace
    again = Workspace(tmp_path)
    sample_few_shot.run(cifar_params, again)
    again.teacher_model.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(ws.teacher_model, again.teacher_model)
    curate_ood.run(cifar_params, again)
    assert again.few_shot_manifest.read_bytes() == ws.few_shot_manifest.read_bytes()
    assert again.ood_manifest.read_bytes() == ws.ood_manifest.read_bytes()


def test_near_id_filter_drops_images_the_teacher_is_sure_about(cifar_workspace, cifar_params, tmp_path):
    import dataclasses

    shared, plain = cifar_workspace
    shutil.copytree(shared.root, tmp_path / "ws")  # the module's workspace stays as other tests expect it
    ws = Workspace(tmp_path / "ws")
    strict = dataclasses.replace(cifar_params, curate_ood=dataclasses.replace(cifar_params.curate_ood, near_id_threshold=0.9))
    summary = curate_ood.run(strict, ws)
    assert summary["near_id_removed"] > 0
    assert summary["size"] == plain["size"]


def test_corrupted_npz_is_refused_by_checksum(shared_data, tmp_path, monkeypatch):
    (tmp_path / "cifar10").mkdir()
    shutil.copy(shared_data / "cifar10" / "classes.json", tmp_path / "cifar10" / "classes.json")
    data = bytearray((shared_data / "cifar10" / "test.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "cifar10" / "test.npz").write_bytes(bytes(data))
    monkeypatch.setenv("FSMC_DATA_DIR", str(tmp_path))
    with pytest.raises(FsmcError, match="Checksum mismatch for cifar10/test.npz"):
        read_split("cifar10", "test", 10)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"images": np.zeros((4, 32, 32, 3), np.uint8)}, "lacks the arrays \\['labels'\\]"),
        ({"images": np.zeros((4, 28, 28, 3), np.uint8), "labels": np.zeros(4, np.int64)}, "expected uint8 N x 32 x 32 x 3"),
        ({"images": np.zeros((4, 32, 32, 3), np.float32), "labels": np.zeros(4, np.int64)}, "dtype float32"),
        ({"images": np.zeros((4, 32, 32, 3), np.uint8), "labels": np.array([0, 1, 2, 10])}, "valid labels 0..9"),
    ],
)
def test_malformed_npz_is_refused_with_the_layout(tmp_path, monkeypatch, arrays, message):
    (tmp_path / "mine").mkdir()
    np.savez(tmp_path / "mine" / "train.npz", **arrays)
    monkeypatch.setenv("FSMC_DATA_DIR", str(tmp_path))
    with pytest.raises(FsmcError, match=message):
        read_split("mine", "train", 10)


def test_missing_file_names_the_expected_path_and_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("FSMC_DATA_DIR", str(tmp_path))
    with pytest.raises(FsmcError) as error:
        read_split("cifar10", "train", 10)
    assert str(tmp_path / "cifar10" / "train.npz") in str(error.value)
    assert "images (uint8 N x H x W x 3)" in str(error.value)
