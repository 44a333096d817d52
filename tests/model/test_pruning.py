"""Pruning really removes channels; checkpoints round-trip with weights_only=True."""

from __future__ import annotations

import torch

from fsmc.compress.pruning import model_cost, prune_channels
from fsmc.models.checkpoint import load_checkpoint, save_checkpoint
from fsmc.models.zoo import build, trained_here_spec

SPEC = trained_here_spec("digits-cnn", 1, 10, [0.3], [0.4])


def test_pruning_lowers_macs_and_params_and_keeps_the_output_shape():
    teacher = build(SPEC).eval()
    example = torch.rand(4, 1, 8, 8)
    student = prune_channels(teacher, example, ratio=0.5)
    before, after = model_cost(teacher, example), model_cost(student, example)
    assert after.macs < 0.4 * before.macs and after.params < 0.4 * before.params
    assert student(example).shape == teacher(example).shape == (4, 10)
    # Channels are gone from the weights themselves, not masked.
    assert student.net.features[0].weight.shape[0] == 16
    # The teacher is left untouched.
    assert teacher.net.features[0].weight.shape[0] == 32


def test_pruned_checkpoint_round_trips_exactly(tmp_path):
    torch.manual_seed(0)
    student = prune_channels(build(SPEC).eval(), torch.rand(1, 1, 8, 8), ratio=0.5)
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
