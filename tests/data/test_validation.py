"""The Great Expectations suites pass on a good workspace and catch corrupted manifests."""

from __future__ import annotations

import shutil

import pytest

from fsmc.data.validation import ValidationFailed
from fsmc.stages import validate
from fsmc.workspace import Workspace


@pytest.fixture()
def workspace_copy(data_workspace, tmp_path):
    shutil.copytree(data_workspace.root, tmp_path / "ws")
    return Workspace(tmp_path / "ws")


def test_clean_manifests_pass_every_suite(workspace_copy, small_params):
    report = validate.run(small_params, workspace_copy)
    assert report["success"]
    assert {s["suite"] for s in report["suites"]} == {
        "few_shot_manifest",
        "few_shot_counts",
        "ood_manifest",
        "few_shot_images",
        "ood_images",
    }


def _corrupt(path, row, column, value):
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index(column)] = value
    lines[row] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("manifest", "column", "value", "failing"),
    [
        ("few_shot_manifest", "label", "11", "expect_column_values_to_be_between"),
        ("few_shot_manifest", "sha256", "0" * 64, "expect_column_pair_values_to_be_equal"),
        ("ood_manifest", "index", "17", "expect_column_pair_values_to_be_equal"),  # row 1 names pool image 0
    ],
)
def test_corrupted_manifest_fails_and_names_the_expectation(workspace_copy, small_params, manifest, column, value, failing):
    _corrupt(getattr(workspace_copy, manifest), 1, column, value)
    with pytest.raises(ValidationFailed) as error:
        validate.run(small_params, workspace_copy)
    assert failing in str(error.value)


def test_dropped_row_breaks_the_requested_profile(workspace_copy, small_params):
    path = workspace_copy.few_shot_manifest
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    with pytest.raises(ValidationFailed, match="few_shot_counts"):
        validate.run(small_params, workspace_copy)


def test_few_shot_image_also_in_ood_manifest_is_caught(workspace_copy, small_params):
    few_hash = workspace_copy.few_shot_manifest.read_text().splitlines()[1].split(",")[3]
    _corrupt(workspace_copy.ood_manifest, 1, "sha256", few_hash)
    with pytest.raises(ValidationFailed, match=r"\[few_shot_manifest\] expect_column_values_to_be_null \{'column': 'also_in_ood_manifest'\}") as error:
        validate.run(small_params, workspace_copy)
    assert few_hash in str(error.value)  # the offending image is named
