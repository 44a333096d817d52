"""A user's own images (class sub-folders of PNGs) as in-distribution data and as the OOD pool."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fsmc.config import load_params
from fsmc.errors import FsmcError
from fsmc.stages import STAGES
from fsmc.workspace import Workspace

COLOURS = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}


def _write_images(folder, colour, count, rng, size=32):
    folder.mkdir(parents=True)
    for i in range(count):
        noise = rng.integers(-40, 40, size=(size, size, 3))
        image = np.clip(np.array(colour)[None, None, :] + noise, 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"{i:03d}.png")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("mine")
    for name, colour in COLOURS.items():
        _write_images(root / "id" / "train" / name, colour, 30, rng)
        _write_images(root / "id" / "test" / name, colour, 10, rng)
    _write_images(root / "ood" / "noise", (128, 128, 128), 80, rng)
    return root


def test_whole_pipeline_runs_on_a_users_image_folders(folders, tmp_path):
    params = load_params(
        None,
        [
            f"dataset=folder:{folders / 'id'}",
            "teacher=small-cnn",
            f"ood_pool=folder:{folders / 'ood'}",
            "k_max=10",
            "imbalance_ratio=5",
            "budget=1x",
            "teacher.epochs=8",
            "recover.steps=30",
            "minority_classes=1",
        ],
    )
    ws = Workspace(tmp_path)
    for stage in ("record_inputs", "sample_few_shot", "teacher", "curate_ood", "validate", "compress", "recover"):
        STAGES[stage](params, ws)
    metrics = STAGES["evaluate"](params, ws)
    assert metrics["classes"] == ["blue", "green", "red"]
    assert metrics["test_size"] == 30
    assert metrics["teacher"]["top1"] > 0.9
    assert metrics["student"]["macs"] < metrics["teacher"]["macs"]


def test_folder_dataset_needs_a_named_ood_pool_to_run_but_not_to_register(folders):
    from fsmc.preflight import check_inputs

    params = load_params(None, [f"dataset=folder:{folders / 'id'}", "teacher=small-cnn"])
    with pytest.raises(FsmcError, match="ood_pool=auto has no default for data.dataset='folder:"):
        check_inputs(params)
    check_inputs(params, ood_pool=False)  # what register-teacher checks: the data and the teacher, no pool


def test_train_and_test_folders_must_agree_on_classes(folders, tmp_path):
    import shutil

    shutil.copytree(folders / "id", tmp_path / "id")
    shutil.rmtree(tmp_path / "id" / "test" / "red")
    params = load_params(None, [f"dataset=folder:{tmp_path / 'id'}", "teacher=small-cnn", f"ood_pool=folder:{folders / 'ood'}"])
    from fsmc.data.sources import load_dataset

    with pytest.raises(FsmcError, match="must hold the same class sub-folders"):
        load_dataset(params.data)


def test_folder_paths_may_start_with_the_home_directory(folders, monkeypatch):
    # params.yaml and `--set data.dataset=folder:~/...` reach fsmc without a shell to expand "~".
    from fsmc.data.sources import forget_read_data, load_dataset, load_ood_pool

    monkeypatch.setenv("HOME", str(folders))
    forget_read_data()
    params = load_params(None, ["data.dataset=folder:~/id", "teacher=small-cnn", "data.ood_pool=folder:~/ood"])
    dataset = load_dataset(params.data)
    assert dataset.classes == ("blue", "green", "red")
    assert len(dataset.train.images) == 90
    assert len(load_ood_pool(params.data).images.images) == 80
