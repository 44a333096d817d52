"""The CIFAR teacher zoo: public checkpoints load, verify, and score what they are recorded to score."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from fsmc.compress.pruning import model_cost, prune_channels
from fsmc.config import DataParams
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.errors import FsmcError
from fsmc.models.checkpoint import load_checkpoint
from fsmc.models.pretrained import PRETRAINED
from fsmc.models.registry import load_pretrained, load_state_dict_checked
from fsmc.models.zoo import build
from fsmc.runtime import predict_logits


@pytest.mark.parametrize("name", ["resnet56", "resnet20-jpeg"])
def test_checkpoint_reproduces_its_recorded_test_accuracy(shared_data, name):
    dataset = load_dataset(DataParams(dataset="cifar10", teacher=name))
    model = load_pretrained(name)
    predictions = predict_logits(model, to_tensor(dataset.test.images, 255)).argmax(1).numpy()
    accuracy = float(np.mean(predictions == dataset.test.labels))
    assert abs(accuracy - PRETRAINED[name].recorded_test_acc) <= 0.001, accuracy


def test_checkpoint_of_another_architecture_names_the_layer(shared_data):
    resnet20 = torch.load(shared_data.parent / "models" / PRETRAINED["resnet20"].file, map_location="cpu", weights_only=True)["state_dict"]
    resnet56 = build(PRETRAINED["resnet56"].spec).net
    state = {k.removeprefix("module."): v for k, v in resnet20.items()}
    with pytest.raises(FsmcError, match="no weights for layer 'layer1.3.conv1.weight'"):
        load_state_dict_checked(resnet56, state, "resnet20 file")
    state["linear.weight"] = torch.zeros(100, 64)
    with pytest.raises(FsmcError, match=r"layer 'linear.weight' has shape \(100, 64\)"):
        load_state_dict_checked(build(PRETRAINED["resnet20"].spec).net, state, "a CIFAR-100 head")


def test_tampered_weights_are_refused_by_checksum(tmp_path, monkeypatch):
    target = tmp_path / PRETRAINED["resnet56"].file
    target.parent.mkdir(parents=True)
    torch.save({"state_dict": build(PRETRAINED["resnet56"].spec).net.state_dict()}, target)
    monkeypatch.setenv("FSMC_MODEL_DIR", str(tmp_path))
    with pytest.raises(FsmcError, match="Checksum mismatch for teacher 'resnet56'"):
        load_pretrained("resnet56")


def test_missing_weights_name_the_expected_path(tmp_path, monkeypatch):
    monkeypatch.setenv("FSMC_MODEL_DIR", str(tmp_path))
    with pytest.raises(FsmcError) as error:
        load_pretrained("resnet56-jpeg")
    assert str(tmp_path / "cifar10-jpeg" / "resnet56-b51b123b.pt") in str(error.value)


class _Payload:
    """Anything that is not a tensor: weights_only must refuse to unpickle it."""


def test_pickle_that_weights_only_refuses_is_a_clear_error(tmp_path):
    path = tmp_path / "model.pt"
    buffer = io.BytesIO()
    torch.save({"format": "fsmc-checkpoint/1", "payload": _Payload()}, buffer)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(FsmcError, match="could not be loaded safely"):
        load_checkpoint(path)


def test_resnet56_inner_channel_pruning_keeps_block_outputs(shared_data):
    teacher = load_pretrained("resnet56")
    example = torch.rand(2, 3, 32, 32)
    student, _ = prune_channels(teacher, example, ratio=0.5)
    block = student.net.layer2[3]
    assert block.conv1.out_channels == 16 and block.conv2.out_channels == 32  # inner halved, output kept
    before, after = model_cost(teacher, example), model_cost(student, example)
    assert 0.45 < after.macs / before.macs < 0.55
    assert student(example).shape == (2, 10)


def test_preflight_refuses_missing_public_weights_unless_downloads_are_allowed(shared_data, tmp_path, monkeypatch):
    from fsmc.config import load_params
    from fsmc.preflight import check_inputs

    monkeypatch.setenv("FSMC_MODEL_DIR", str(tmp_path))
    monkeypatch.delenv("FSMC_ALLOW_DOWNLOAD", raising=False)
    params = load_params(None, ["dataset=cifar10", "teacher=resnet56"])
    with pytest.raises(FsmcError, match="FSMC_ALLOW_DOWNLOAD=1 to fetch it from https://github.com/akamaster"):
        check_inputs(params)
