"""Compression schemes do what they claim: exact channel removal, kept sparsity, real int8, smaller students."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import torch

from fsmc.compress.importance_batch import class_aware_loss, taylor_loss
from fsmc.compress.pruning import masked_copy, model_cost, prune_channels
from fsmc.compress.unstructured import prune_weights, sparsity, zero_pattern
from fsmc.models.checkpoint import load_checkpoint
from fsmc.models.cifar_resnet import CifarResNet
from fsmc.models.normalized import NormalizedClassifier
from fsmc.stages import compress, evaluate, recover, teacher
from fsmc.workspace import Workspace


def _with(params, section: str, **changes):
    return dataclasses.replace(params, **{section: dataclasses.replace(getattr(params, section), **changes)})


def _resnet(depth: int = 20) -> NormalizedClassifier:
    torch.manual_seed(0)
    model = NormalizedClassifier(CifarResNet(depth), [0.5] * 3, [0.25] * 3).eval()
    with torch.no_grad():  # non-trivial BN statistics, so silencing a channel is visible in the outputs
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model


@pytest.mark.parametrize(
    ("importance", "global_pruning"),
    [("l1", False), ("l2", False), ("bn-scale", False), ("taylor", False), ("class-aware", False), ("l1", True)],
)
def test_pruned_resnet_is_exactly_the_masked_unpruned_resnet(importance, global_pruning):
    teacher = _resnet()
    images, labels = torch.rand(24, 3, 32, 32), torch.arange(24) % 10
    loss = {"taylor": taylor_loss(images, labels), "class-aware": class_aware_loss(images, labels, torch.rand(16, 3, 32, 32), 10)}
    student, kept = prune_channels(teacher, images[:1], 0.5, importance, global_pruning, loss.get(importance))
    assert model_cost(student, images).macs < 0.6 * model_cost(teacher, images).macs
    # Block outputs keep their width (option-A shortcut); only inner channels go, and each block's conv2
    # lost exactly the inputs its conv1 lost (what fskd and cd index the teacher with).
    assert all(name.endswith("conv1") and "layer" in name for name in kept.outputs)
    assert {n.replace("conv1", "conv2"): c for n, c in kept.outputs.items()} == kept.inputs
    x = torch.rand(8, 3, 32, 32)
    with torch.no_grad():
        difference = (student(x) - masked_copy(teacher, kept)(x)).abs().max()
        assert difference < 1e-4, difference
        assert (student(x) - teacher(x)).abs().max() > 1e-2  # pruning did change the function


def test_class_aware_importance_differs_from_plain_taylor_on_imbalanced_shots():
    teacher = _resnet()
    torch.manual_seed(1)
    images = torch.rand(40, 3, 32, 32)
    labels = torch.tensor([0] * 20 + [1] * 10 + list(range(2, 10)) + [2, 3])  # imbalanced
    ood = torch.rand(30, 3, 32, 32)
    _, plain = prune_channels(teacher, images[:1], 0.5, "taylor", gradient_loss=taylor_loss(images, labels))
    _, aware = prune_channels(teacher, images[:1], 0.5, "class-aware", gradient_loss=class_aware_loss(images, labels, ood, 10))
    assert plain.outputs != aware.outputs


def test_unstructured_sparsity_is_exact_after_recovery(pruned_free_workspace, small_params):
    params = _with(_with(small_params, "compress", scheme="unstructured", ratio=0.6), "recover", method="kd", oe=True)
    ws = pruned_free_workspace
    compress.run(params, ws)
    before, _, _ = load_checkpoint(ws.pruned_model)
    assert abs(sparsity(before) - 0.6) < 0.01
    recover.run(params, ws)
    after, _, _ = load_checkpoint(ws.student_model)
    zeros_before, zeros_after = zero_pattern(before), zero_pattern(after)
    assert all(torch.equal(zeros_before[name], zeros_after[name]) for name in zeros_before)  # every zero stayed zero
    assert not torch.equal(before.state_dict()["net.features.3.weight"], after.state_dict()["net.features.3.weight"])
    metrics = evaluate.run(params, ws)
    assert metrics["student"]["top1"] > 0.9


def test_global_unstructured_pruning_reaches_the_overall_ratio():
    pruned = prune_weights(_resnet(), 0.7, global_pruning=True)
    assert abs(sparsity(pruned) - 0.7) < 0.01
    per_layer = [float((w == 0).float().mean()) for w in zero_pattern(pruned).values()]
    assert max(per_layer) - min(per_layer) > 0.1  # global ranking prunes layers unevenly


def test_int8_qat_trains_then_runs_int8_kernels(pruned_free_workspace, small_params):
    from fsmc.models.int8_graph import is_quantized, runs_int8_kernels

    params = _with(_with(small_params, "compress", scheme="int8-qat"), "recover", method="kd", oe=False, steps=60)
    ws = pruned_free_workspace
    compress.run(params, ws)
    recover.run(params, ws)
    student, _, meta = load_checkpoint(ws.student_model)
    assert is_quantized(student) and meta["quantization"] and meta["recovery"] == "kd"
    assert runs_int8_kernels(student, torch.rand(2, 1, 8, 8))
    metrics = evaluate.run(params, ws)
    assert metrics["student"]["top1"] > 0.9
    assert metrics["student"]["bytes"] * 3.5 <= metrics["teacher"]["bytes"]


def test_channel_then_int8_removes_channels_and_runs_int8_kernels(pruned_free_workspace, small_params):
    """scheme=channel+int8-ptq: what ships is the pruned student, recovered in float, then int8."""
    from fsmc.models.int8_graph import is_quantized, runs_int8_kernels

    params = _with(_with(small_params, "compress", scheme="channel+int8-ptq"), "recover", method="kd", oe=True, steps=60)
    ws = pruned_free_workspace
    summary = compress.run(params, ws)
    assert summary["macs_ratio"] < 0.6 and any(kept < full for full, kept in summary["conv_out_channels"].values())
    report = recover.run(params, ws)
    student, _, meta = load_checkpoint(ws.student_model)
    assert is_quantized(student) and meta["quantization"] and meta["recovery"] == "kd+oe"
    assert "quantize_after_recovery" not in meta and any("int8 PTQ after recovery" in note for note in report["notes"])
    assert runs_int8_kernels(student, torch.rand(2, 1, 8, 8))
    metrics = evaluate.run(params, ws)
    assert metrics["student"]["top1"] > 0.9 and metrics["student"]["macs"] < 0.6 * metrics["teacher"]["macs"]
    assert metrics["student"]["bytes"] * 6 <= metrics["teacher"]["bytes"], "int8 (4x) of a student with about half the weights"


@pytest.mark.parametrize("init", ["teacher", "scratch"])
def test_distill_to_a_smaller_student(pruned_free_workspace, small_params, init):
    params = _with(_with(small_params, "compress", scheme="distill", student_init=init), "recover", method="kd", oe=False)
    ws = pruned_free_workspace
    summary = compress.run(params, ws)
    assert summary["student_arch"] == "small-cnn-half" and summary["macs_ratio"] < 0.4
    recover.run(params, ws)
    # From scratch, 120 steps on 78 images only get part of the way; from the teacher, nearly all of it.
    assert evaluate.run(params, ws)["student"]["top1"] > {"teacher": 0.85, "scratch": 0.4}[init]


def test_resnet_student_from_the_teacher_keeps_evenly_spaced_blocks():
    from fsmc.compress.distill import kept_blocks, smaller_student

    teacher = _resnet(56)
    spec = {"arch": "cifar-resnet", "kwargs": {"depth": 56, "num_classes": 10}, "mean": [0.5] * 3, "std": [0.25] * 3}
    student, student_spec = smaller_student(teacher, spec, "resnet20", "teacher", torch.rand(1, 3, 32, 32))
    assert student_spec["kwargs"]["depth"] == 20 and kept_blocks(9, 3) == [0, 4, 8]
    assert torch.equal(student.net.layer2[1].conv1.weight, teacher.net.layer2[4].conv1.weight)
    assert torch.equal(student.net.linear.weight, teacher.net.linear.weight)
    x = torch.rand(2, 3, 32, 32)
    assert model_cost(student, x).macs < 0.4 * model_cost(teacher, x).macs


@pytest.fixture
def pruned_free_workspace(data_workspace, small_params, tmp_path):
    """The validated data stages and a trained teacher, ready for any scheme."""
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(data_workspace.root, ws.root)
    teacher.run(small_params, ws)
    return ws


def test_dropped_blocks_keep_the_output_shape_and_the_model_loads_back_from_its_checkpoint(tmp_path):
    from fsmc.compress.blocks import drop_blocks, droppable_blocks
    from fsmc.models.checkpoint import save_checkpoint

    teacher = _resnet(20)
    images = torch.rand(48, 3, 32, 32)
    student, record = drop_blocks(teacher, 0.5, images, images[:1])
    assert set(record["dropped_blocks"]) <= set(droppable_blocks(teacher, images[:1]))
    assert "net.layer2.0" not in droppable_blocks(teacher, images[:1])  # it changes width and resolution: it stays
    assert len(record["dropped_blocks"]) == 4  # half of the 7 droppable blocks of a ResNet-20, rounded
    assert all(isinstance(student.get_submodule(name), torch.nn.Identity) for name in record["dropped_blocks"])
    assert model_cost(student, images[:1]).macs < 0.75 * model_cost(teacher, images[:1]).macs
    spec = {"arch": "cifar-resnet", "kwargs": {"depth": 20, "num_classes": 10}, "mean": [0.5] * 3, "std": [0.25] * 3}
    save_checkpoint(tmp_path / "student.pt", student, spec, {"dropped_blocks": record["dropped_blocks"]})
    loaded, _, _ = load_checkpoint(tmp_path / "student.pt")
    x = torch.rand(5, 3, 32, 32)
    with torch.no_grad():
        assert loaded(x).shape == teacher(x).shape == (5, 10)
        assert torch.equal(loaded(x), student(x))


def test_block_drop_then_int8_drops_blocks_runs_int8_kernels_and_loads_back(tmp_path):
    """scheme=block-drop+int8-ptq: what ships is shallower *and* int8, recovered in float first, and its checkpoint rebuilds it."""
    from fsmc.compress.schemes import SchemeInputs, compress
    from fsmc.config import CompressParams, RecoverParams
    from fsmc.models.checkpoint import save_checkpoint
    from fsmc.models.int8_graph import is_quantized, runs_int8_kernels
    from fsmc.recover.data import RecoveryData
    from fsmc.recover.methods import RecoveryContext
    from fsmc.recover.pipeline import recover_student

    teacher = _resnet(20)
    torch.manual_seed(2)
    images, labels, ood = torch.rand(40, 3, 32, 32), torch.arange(40) % 10, torch.rand(40, 3, 32, 32)
    spec = {"arch": "cifar-resnet", "kwargs": {"depth": 20, "num_classes": 10}, "mean": [0.5] * 3, "std": [0.25] * 3}
    inputs = SchemeInputs("resnet20", spec, images[:1], images, labels, ood, 10)
    result = compress(teacher, CompressParams(scheme="block-drop+int8-ptq", ratio=0.5, calibration_images=64), inputs)
    dropped = result.meta["dropped_blocks"]
    assert len(dropped) == 4 and result.meta["quantize_after_recovery"] == "ptq" and not is_quantized(result.model)
    with torch.no_grad():
        data = RecoveryData(images, labels, ood, 10, teacher(images), teacher(ood))
    shipped, report, meta = recover_student(result.model, result.meta, RecoveryContext(teacher, data), RecoverParams(method="none", oe=False), images[:1])
    assert is_quantized(shipped) and runs_int8_kernels(shipped, images[:2]) and "quantize_after_recovery" not in meta
    assert any("int8 PTQ after recovery, calibrated on 64 images" in note for note in report.notes)
    save_checkpoint(tmp_path / "student.pt", shipped, spec, meta)
    loaded, _, loaded_meta = load_checkpoint(tmp_path / "student.pt")
    assert loaded_meta["dropped_blocks"] == dropped and runs_int8_kernels(loaded, images[:2])
    with torch.no_grad():
        assert torch.equal(loaded(images[:8]), shipped(images[:8]))
        float_student = result.model.eval()
        agreement = (shipped(images).argmax(1) == float_student(images).argmax(1)).float().mean()
    assert agreement >= 0.8, agreement  # int8 of the same shallower network, not another function


def test_a_block_made_redundant_by_hand_is_scored_cheapest_and_dropped_first():
    """Zeroing a block's residual branch makes it the identity: its recoverability damage is nil, the others' is not."""
    from fsmc.compress.blocks import drop_blocks

    teacher = _resnet(20)
    with torch.no_grad():
        teacher.net.layer3[1].bn2.weight.zero_()
        teacher.net.layer3[1].bn2.bias.zero_()
    images = torch.rand(48, 3, 32, 32)
    _, record = drop_blocks(teacher, 0.1, images, images[:1])
    assert record["dropped_blocks"] == ["net.layer3.1"]
    damage = {name: c["damage"] for name, c in record["candidates"].items()}
    assert damage["net.layer3.1"] < 0.05 * min(d for name, d in damage.items() if name != "net.layer3.1")


def test_block_dropping_refuses_a_teacher_without_residual_blocks_and_layerwise_methods():
    from fsmc.compress.blocks import drop_blocks
    from fsmc.config import load_params
    from fsmc.errors import FsmcError
    from fsmc.models.small_cnn import SmallCNN

    plain = NormalizedClassifier(SmallCNN(), [0.5], [0.25]).eval()
    with pytest.raises(FsmcError, match="has none"):
        drop_blocks(plain, 0.5, torch.rand(4, 1, 8, 8), torch.rand(1, 1, 8, 8))
    with pytest.raises(FsmcError, match="'fskd' does not apply to compress.scheme='block-drop'"):
        load_params(None, ["scheme=block-drop", "method=fskd"])


def test_round_to_keeps_simd_friendly_widths_nearest_the_ratio_and_prunes_exactly():
    teacher = _resnet(20)
    x = torch.rand(4, 3, 32, 32)
    student, kept = prune_channels(teacher, x[:1], 0.6, round_to=8)
    widths = {name: len(channels) for name, channels in kept.outputs.items()}
    # 16, 32 and 64 channels at 40 % kept: 6.4 -> 8, 12.8 -> 16, 25.6 -> 24 (nearest multiple of 8, at least 8)
    assert {widths["net.layer1.0.conv1"], widths["net.layer2.0.conv1"], widths["net.layer3.0.conv1"]} == {8, 16, 24}
    assert all(width % 8 == 0 for width in widths.values())
    with torch.no_grad():
        assert (student(x) - masked_copy(teacher, kept)(x)).abs().max() < 1e-4
