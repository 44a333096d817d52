"""Every recovery method improves the compressed student on held-out test data; the OE plug-in behaves."""

from __future__ import annotations

import copy
import dataclasses
import shutil

import pytest
import torch
import torch.nn.functional as F

from fsmc.atomic import read_json
from fsmc.compress.pruning import KeptChannels
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.models.checkpoint import load_checkpoint
from fsmc.runtime import predict_logits
from fsmc.stages import compress, recover, teacher
from fsmc.workspace import Workspace


def _with(params, section: str, **changes):
    return dataclasses.replace(params, **{section: dataclasses.replace(getattr(params, section), **changes)})


@pytest.fixture(scope="module")
def pruned_workspace(data_workspace, small_params, tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("ws-pruned"))
    shutil.copytree(data_workspace.root, ws.root, dirs_exist_ok=True)
    teacher.run(small_params, ws)
    # Every prunable layer loses channels (uniform), so each conv after one is a layer fskd and cd regress.
    compress.run(dataclasses.replace(small_params, compress=dataclasses.replace(small_params.compress, allocation="uniform")), ws)
    return ws


def _layerwise_inputs(ws, params):
    """The pruned student, the teacher, the few-shot images and the context fskd/cd solve with."""
    from fsmc.recover.methods.base import RecoveryContext
    from fsmc.stages.reading import few_shot_set

    model, _, meta = load_checkpoint(ws.pruned_model)
    the_teacher, _, _ = load_checkpoint(ws.teacher_model)
    _, _, few = few_shot_set(params, ws)
    return model, the_teacher, to_tensor(few.images, few.pixel_max), RecoveryContext(the_teacher, None, KeptChannels.from_json(meta["kept_channels"]))


def _test_accuracy(path, params) -> float:
    model, _, _ = load_checkpoint(path)
    dataset = load_dataset(params.data)
    predictions = predict_logits(model, to_tensor(dataset.test.images, dataset.test.pixel_max)).argmax(1)
    return float((predictions == torch.from_numpy(dataset.test.labels)).float().mean())


@pytest.mark.parametrize(
    ("method", "oe"),
    [("bp", False), ("bp", True), ("kd", False), ("kd", True), ("fskd", False), ("fskd", True), ("cd", False), ("cd", True), ("mir", False), ("mir", True)],
)
def test_recovery_beats_the_unrecovered_pruned_student(pruned_workspace, small_params, method, oe):
    params = _with(small_params, "recover", method=method, oe=oe)
    report = recover.run(params, pruned_workspace)
    pruned = _test_accuracy(pruned_workspace.pruned_model, params)
    recovered = _test_accuracy(pruned_workspace.student_model, params)
    assert recovered > pruned + 0.3, (pruned, recovered)  # the pruned digits student is near chance
    assert report["method"] == params.recover.label
    assert report["oe_active"] is oe
    if oe:
        assert report["ood_size"] > 0
    if not oe:
        assert report["ood_size"] == 0 and report["holdout_size"] == 0


def test_early_stopping_with_the_plug_in_holds_out_ood_images_never_shots(pruned_workspace, small_params):
    """The rarest classes have a handful of shots: the held-out signal must not take any of them."""
    params = _with(small_params, "recover", method="kd", oe=True, early_stopping="on", ood_holdout=100, eval_every=10)
    report = recover.run(params, pruned_workspace)
    shots = sum(read_json(pruned_workspace.few_shot_summary)["counts"])
    ood = read_json(pruned_workspace.ood_summary)["size"]
    assert report["train_size"] == shots
    assert report["holdout_size"] == 100 and report["ood_size"] == ood - 100
    assert report["holdout_curve"] and report["best_step"] <= report["steps_run"]
    # Without OOD images the signal falls back to a stratified slice of the shots.
    report = recover.run(_with(params, "recover", oe=False), pruned_workspace)
    assert report["holdout_size"] > 0 and report["train_size"] == shots - report["holdout_size"]


@pytest.mark.parametrize("method", ["bp", "kd", "fskd", "cd", "mir"])
def test_oe_changes_nothing_when_the_ood_pool_is_empty(data_workspace, small_params, tmp_path, method):
    """budget=0: no OOD image to add, so oe=true must give the very same student as oe=false."""
    from fsmc.stages import curate_ood

    params = _with(_with(small_params, "curate_ood", budget="0"), "recover", method=method)
    students = {}
    for oe in (False, True):
        ws = Workspace(tmp_path / str(oe))
        shutil.copytree(data_workspace.root, ws.root)
        curate_ood.run(params, ws)
        teacher.run(params, ws)
        compress.run(params, ws)
        report = recover.run(_with(params, "recover", oe=oe), ws)
        assert report["ood_size"] == 0 and not report["oe_active"]
        students[oe] = load_checkpoint(ws.student_model)[0].state_dict()
    assert students[True].keys() == students[False].keys()
    assert all(torch.equal(students[True][k], students[False][k]) for k in students[False])


def test_fskd_absorption_keeps_the_size_and_matches_the_unabsorbed_corrections(pruned_workspace, small_params):
    from fsmc.compress.pruning import model_cost
    from fsmc.recover.methods.fskd import solve, with_corrections

    model, the_teacher, images, context = _layerwise_inputs(pruned_workspace, small_params)
    absorbed, corrections, errors = solve(model, the_teacher, images, context)
    # The first pruned layer sees the teacher's own input (error 0 already); later ones inherit error, which Q cuts.
    assert corrections and all(after <= before + 1e-5 for before, after in errors.values()), errors
    assert sum(after < 0.7 * before for before, after in errors.values()) >= 2, errors
    unabsorbed = with_corrections(model, corrections).eval()
    test = load_dataset(small_params.data).test
    x = to_tensor(test.images[:200], test.pixel_max)
    with torch.no_grad():
        assert (absorbed(x) - unabsorbed(x)).abs().max() < 1e-4
    assert model_cost(absorbed, x).params == model_cost(model, x).params
    assert model_cost(absorbed, x).macs == model_cost(model, x).macs


def test_mir_keeps_the_teachers_head_and_cd_keeps_the_pruned_shapes(pruned_workspace, small_params):
    the_teacher, _, _ = load_checkpoint(pruned_workspace.teacher_model)
    pruned, _, _ = load_checkpoint(pruned_workspace.pruned_model)
    recover.run(_with(small_params, "recover", method="mir", oe=False), pruned_workspace)
    mir, _, meta = load_checkpoint(pruned_workspace.student_model)
    assert torch.equal(mir.classifier.weight, the_teacher.classifier.weight)
    assert meta["recovery"] == "mir"
    recover.run(_with(small_params, "recover", method="cd", oe=False), pruned_workspace)
    cd, _, _ = load_checkpoint(pruned_workspace.student_model)
    assert {k: v.shape for k, v in cd.state_dict().items()} == {k: v.shape for k, v in pruned.state_dict().items()}


def test_cd_layerwise_phase_lowers_each_regressed_layers_loss_and_mu_matters(pruned_workspace, small_params):
    from fsmc.recover.methods.cd import layerwise, regressed_layers

    model, the_teacher, images, context = _layerwise_inputs(pruned_workspace, small_params)
    assert regressed_layers(model, the_teacher, context) == ["net.features.3", "net.features.7"]  # inputs pruned
    students, losses = {}, {}
    for mu in (0.0, 0.9, 1.0):
        students[mu] = copy.deepcopy(model)
        weights = torch.full((len(images),), 1.0 / len(images))
        losses[mu] = layerwise(students[mu], the_teacher, images, context, _with(small_params, "recover", mu=mu).recover, weights)
    # The correction term sees the teacher's full input and drives the loss down on every layer ...
    assert all(last < 0.8 * first for first, last in losses[1.0].values()), losses[1.0]
    assert all(last < first for first, last in losses[0.9].values()), losses[0.9]
    # ... while imitation alone is exactly 0 for a student that is its teacher restricted to kept channels.
    # (float round-off, hence a tolerance.)
    assert all(first < 1e-9 and last < 1e-9 for first, last in losses[0.0].values()), losses[0.0]
    weight = "net.features.7.weight"
    drift = (students[0.0].state_dict()[weight] - model.state_dict()[weight]).norm()
    assert drift < 0.1 * (students[1.0].state_dict()[weight] - model.state_dict()[weight]).norm()
    assert not torch.equal(students[0.9].state_dict()[weight], students[1.0].state_dict()[weight])


def test_cd_closed_form_solve_is_the_least_squares_minimum_and_keeps_zeros_and_groups():
    from torch.nn.utils import parametrize

    from fsmc.compress.unstructured import FixedZeros
    from fsmc.recover.methods.cd import solve_layer

    generator = torch.Generator().manual_seed(0)
    weights = torch.full((24,), 1.0 / 24)
    for groups, sparse in ((1, False), (2, True), (4, False)):
        layer = torch.nn.Conv2d(8, 8, 3, padding=1, groups=groups, bias=False)
        if sparse:  # held as unstructured pruning holds it: a fixed-zeros parametrisation
            mask = torch.rand(layer.weight.shape, generator=generator) < 0.5
            parametrize.register_parametrization(layer, "weight", FixedZeros(mask.float()))
        h_t, h_s = torch.randn(24, 8, 6, 6, generator=generator), torch.randn(24, 8, 6, 6, generator=generator)
        target = torch.nn.Conv2d(8, 8, 3, padding=1, groups=groups, bias=False)
        with torch.no_grad():
            y_tt, y_st = target(h_t), target(h_s)
        start = layer.weight.detach().clone()

        def loss(weight):
            return 0.9 * F.mse_loss(layer._conv_forward(h_t, weight, None), y_tt) + 0.1 * F.mse_loss(layer._conv_forward(h_s, weight, None), y_st)

        solve_layer(layer, h_t, y_tt, h_s, y_st, 0.9, weights)
        solved = layer.weight.detach().clone()
        assert loss(solved) < (0.5 if sparse else 0.05) * loss(start)  # half the weights fixed at 0 cannot fit a dense target
        if sparse:
            assert torch.equal(solved[~mask], torch.zeros_like(solved[~mask]))
        else:  # the realisable target is found (up to the ridge)
            assert torch.allclose(solved, target.weight.detach(), atol=1e-2)
        # A minimum: no small step along a random direction (kept weights only) lowers the loss.
        for _ in range(5):
            step = 1e-3 * torch.randn(solved.shape, generator=generator) * (mask if sparse else 1)
            assert loss(solved + step) >= loss(solved) - 1e-9


def test_registries_and_config_name_the_same_schemes_and_methods():
    from fsmc.compress.schemes import SCHEMES
    from fsmc.config import METHOD_DECLARATIONS, RECOVERY_METHODS
    from fsmc.config import SCHEMES as CONFIG_SCHEMES
    from fsmc.recover.methods import METHODS

    assert tuple(METHODS) == RECOVERY_METHODS  # each declared method has code, and each method's code its declaration
    assert all(METHODS[name].declaration is METHOD_DECLARATIONS[name] for name in METHODS)
    assert tuple(SCHEMES) == CONFIG_SCHEMES
