"""Pruning really removes channels; checkpoints round-trip with weights_only=True."""

from __future__ import annotations

import pytest
import torch

from fsmc.compress.pruning import channel_counts, model_cost, prune_channels
from fsmc.errors import FsmcError
from fsmc.models.checkpoint import load_checkpoint, save_checkpoint
from fsmc.models.zoo import build, trained_here_spec

SPEC = trained_here_spec("digits-cnn", 1, 10, [0.3], [0.4])


def test_pruning_lowers_macs_and_params_and_keeps_the_output_shape():
    teacher = build(SPEC).eval()
    example = torch.rand(4, 1, 8, 8)
    student, _ = prune_channels(teacher, example, ratio=0.5)
    before, after = model_cost(teacher, example), model_cost(student, example)
    # The last conv keeps its 64 outputs (the feature width the teacher's head needs), so about a third remains.
    assert after.macs < 0.4 * before.macs and after.params < 0.6 * before.params
    assert student.net.features[7].weight.shape[:2] == (64, 32)
    assert student(example).shape == teacher(example).shape == (4, 10)
    # Channels are gone from the weights themselves, not masked.
    assert student.net.features[0].weight.shape[0] == 16
    # The teacher is left untouched, and the summary says what went per layer.
    assert teacher.net.features[0].weight.shape[0] == 32
    assert channel_counts(teacher, student)["net.features.0"] == [32, 16]


def test_layer_ratios_set_each_layers_width_and_zero_keeps_a_layer_whole():
    """How a paper's per-layer widths are reproduced (the CD code's ResNet-56 in benchmarks/headline_cell.py)."""
    teacher = build(SPEC).eval()
    example = torch.rand(4, 1, 8, 8)
    student, kept = prune_channels(teacher, example, ratio=0.5, layer_ratios={"net.features.0": 0.0, "net.features.3": 0.75})
    assert channel_counts(teacher, student)["net.features.0"] == [32, 32]
    assert channel_counts(teacher, student)["net.features.3"] == [64, 16]
    assert "net.features.0" not in kept.outputs and len(kept.outputs["net.features.3"]) == 16
    with pytest.raises(FsmcError, match="net.features.9"):  # a typo names the layer, not an AttributeError deep in torch
        prune_channels(teacher, example, ratio=0.5, layer_ratios={"net.features.9": 0.5})


def test_pruned_checkpoint_round_trips_exactly(tmp_path):
    torch.manual_seed(0)
    student, _ = prune_channels(build(SPEC).eval(), torch.rand(1, 1, 8, 8), ratio=0.5)
    path = tmp_path / "student.pt"
    save_checkpoint(path, student, SPEC)
    loaded, spec, _ = load_checkpoint(path)
    images = torch.rand(8, 1, 8, 8)
    assert spec == SPEC
    assert torch.equal(loaded(images), student.eval()(images))


def test_model_takes_images_in_unit_range_and_normalises_inside():
    model = build(trained_here_spec("digits-cnn", 1, 10, [0.5], [0.25])).eval()
    images = torch.rand(2, 1, 8, 8)
    assert torch.allclose(model(images), model.net((images - 0.5) / 0.25))


def test_vgg16_bn_has_the_cifar_cost_and_prunes_every_conv():
    from fsmc.models.pretrained import IMAGENET_MEAN, IMAGENET_STD

    vgg = build({"arch": "cifar-vgg16-bn", "kwargs": {"num_classes": 10}, "mean": IMAGENET_MEAN, "std": IMAGENET_STD}).eval()
    example = torch.rand(2, 3, 32, 32)
    cost = model_cost(vgg, example)
    assert 310e6 < cost.macs < 320e6  # about 314 M MACs, as counted in notes/stack.md
    pruned, _ = prune_channels(vgg, example, ratio=0.5)
    assert model_cost(pruned, example).macs < 0.3 * cost.macs
    assert pruned(example).shape == (2, 10)


def test_pruned_vgg_with_batchnorm1d_head_round_trips(tmp_path):
    from fsmc.models.pretrained import IMAGENET_MEAN, IMAGENET_STD

    spec = {"arch": "cifar-vgg16-bn", "kwargs": {"num_classes": 10}, "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    pruned, _ = prune_channels(build(spec).eval(), torch.rand(2, 3, 32, 32), ratio=0.5)
    assert pruned.net.head[1].num_features < 512  # the head's BatchNorm1d was pruned too
    save_checkpoint(tmp_path / "vgg.pt", pruned, spec)
    loaded, _, _ = load_checkpoint(tmp_path / "vgg.pt")
    images = torch.rand(3, 3, 32, 32)
    assert torch.equal(loaded(images), pruned.eval()(images))


def test_teacher_outputs_are_cached_and_match_a_fresh_forward(tmp_path):
    from fsmc.teacher_outputs import teacher_outputs

    torch.manual_seed(0)
    model = build(SPEC).eval()
    path = tmp_path / "teacher.pt"
    save_checkpoint(path, model, SPEC)
    images = torch.rand(5, 1, 8, 8)
    first, hit_first = teacher_outputs(path, model, images, "five-images", with_features=True)
    again, hit_again = teacher_outputs(path, model, images, "five-images", with_features=True)
    assert (hit_first, hit_again) == (False, True)
    with torch.no_grad():
        assert torch.allclose(first["logits"], model(images), atol=1e-6)
        assert first["features"].shape == model.forward_features(images).shape
    assert torch.equal(first["logits"], again["logits"])
