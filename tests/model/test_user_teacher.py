"""A user's own torchvision classifier as the teacher: pruning over its whole graph, every method, bad files."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision

from fsmc.compress.distill import smaller_student
from fsmc.compress.pruning import masked_copy, model_cost, prune_channels
from fsmc.compress.quantization import quantize_ptq
from fsmc.config import load_params
from fsmc.errors import FsmcError
from fsmc.export import export_onnx
from fsmc.models.checkpoint import load_checkpoint, save_checkpoint
from fsmc.models.user_teacher import load_user_teacher
from fsmc.models.zoo import build
from fsmc.pipeline import run_pipeline
from fsmc.stages import STAGES
from fsmc.workspace import Workspace
from tests.conftest import REPO, TEST_BUDGET
from tests.user_models import UserNet, train_on_digits, train_torchvision_on_digits

DIGITS_RGB32 = ["image_size=32", "image_channels=3"]


def _spec(name: str) -> dict:
    return {"arch": "torchvision", "kwargs": {"name": name, "num_classes": 10}, "mean": [0.5] * 3, "std": [0.25] * 3}


@pytest.fixture(scope="module")
def resnet18_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("user") / "resnet18-digits.pt"
    accuracy = train_torchvision_on_digits("resnet18", 32, 2, path)
    assert accuracy > 0.8, f"the fixture teacher itself is bad ({accuracy:.3f}): nothing below would mean anything"
    return path


@pytest.mark.parametrize(
    ("name", "residual", "depthwise"),
    [("resnet18", "net.model.layer1.0.conv2", None), ("mobilenet_v3_small", None, "net.model.features.1.block.0.0")],
)
def test_pruning_removes_channels_across_the_whole_graph(name, residual, depthwise, tmp_path):
    torch.manual_seed(0)
    teacher = build(_spec(name)).eval()
    images = torch.rand(4, 3, 32, 32)
    student, kept = prune_channels(teacher, images, ratio=0.5)
    layers = dict(student.named_modules())
    if residual:  # a block output: pruned together with the stem and every addition it feeds
        assert layers[residual].out_channels == 32 and layers["net.model.conv1"].out_channels == 32
    if depthwise:
        conv = layers[depthwise]
        assert conv.groups == conv.in_channels == conv.out_channels < dict(teacher.named_modules())[depthwise].out_channels
    assert model_cost(student, images).macs < 0.5 * model_cost(teacher, images).macs
    # the feature width before pooling is the teacher's: its head fits the student
    assert student.classifier.weight.shape == teacher.classifier.weight.shape
    with torch.no_grad():
        pruned, masked = student(images), masked_copy(teacher, kept)(images)
    assert pruned.shape == (4, 10)
    assert torch.allclose(pruned, masked, atol=1e-5 * float(masked.abs().max()) + 1e-12)
    save_checkpoint(tmp_path / "student.pt", student, _spec(name))
    assert torch.equal(load_checkpoint(tmp_path / "student.pt")[0](images), pruned)


def _run_pipeline(tmp_path, overrides: list[str]) -> dict:
    params = load_params(REPO / "params.yaml", overrides)
    ws = Workspace(tmp_path)
    run_pipeline(params, ws)
    return json.loads(ws.metrics.read_text())


@pytest.mark.slow
def test_every_method_recovers_a_pruned_torchvision_teacher(resnet18_weights, tmp_path):
    user = ["teacher=torchvision:resnet18", f"teacher_weights={resnet18_weights}", *DIGITS_RGB32, "recover.steps=60"]
    unrecovered = _run_pipeline(tmp_path / "none", [*user, "method=none", "oe=false"])
    assert unrecovered["teacher"]["top1"] > 0.8
    for method in ("bp", "kd", "fskd", "mir"):
        for oe in ("false", "true"):
            metrics = _run_pipeline(tmp_path / f"{method}-{oe}", [*user, f"method={method}", f"oe={oe}"])
            assert metrics["student"]["top1"] > unrecovered["student"]["top1"] + 0.2, (method, oe)


@pytest.mark.slow
def test_cross_distillation_recovers_a_pruned_torchvision_teacher(resnet18_weights, tmp_path):
    """cd solves every pruned convolution of the ResNet-18 (residual blocks, downsample branches) in closed form."""
    user = ["teacher=torchvision:resnet18", f"teacher_weights={resnet18_weights}", *DIGITS_RGB32, "recover.steps=60"]
    unrecovered = _run_pipeline(tmp_path / "none", [*user, "method=none", "oe=false"])
    for oe in ("false", "true"):
        metrics = _run_pipeline(tmp_path / f"cd-{oe}", [*user, "method=cd", f"oe={oe}"])
        assert metrics["student"]["top1"] > unrecovered["student"]["top1"] + 0.2, (oe, metrics["student"]["top1"])


@pytest.mark.slow
def test_the_teachers_weights_and_source_are_recorded(resnet18_weights, tmp_path):
    params = load_params(REPO / "params.yaml", ["teacher=torchvision:resnet18", f"teacher_weights={resnet18_weights}", *DIGITS_RGB32])
    ws = Workspace(tmp_path)
    sources = STAGES["record_inputs"](params, ws)
    result = STAGES["teacher"](params, ws)
    teacher, spec, meta = load_checkpoint(ws.teacher_model)
    assert spec["arch"] == "torchvision" and spec["kwargs"] == {"name": "resnet18", "num_classes": 10}
    assert meta["source"]["weights_sha256"] == sources["teacher_weights"]["sha256"] == result["recipe"]["weights_sha256"]
    reference = torchvision.models.resnet18(num_classes=10).eval()
    reference.load_state_dict(torch.load(resnet18_weights, weights_only=True))
    images = torch.rand(3, 3, 32, 32)
    mean, std = torch.tensor(spec["mean"]).view(1, 3, 1, 1), torch.tensor(spec["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(teacher(images), reference((images - mean) / std), atol=1e-5)


def test_a_student_fsmc_wrote_is_the_teacher_of_the_next_round(tmp_path):
    first = _run_pipeline(tmp_path / "round1", TEST_BUDGET)
    student_file = Workspace(tmp_path / "round1").student_model
    second = _run_pipeline(tmp_path / "round2", ["teacher=checkpoint", f"teacher_weights={student_file}", *TEST_BUDGET])
    # the same model on the same test split: the first round's student is exactly the second round's teacher
    assert second["teacher"]["per_class"] == first["student"]["per_class"]
    assert second["student"]["macs"] < 0.6 * first["student"]["macs"]
    quantized = _run_pipeline(tmp_path / "int8", ["scheme=int8-ptq", "method=none", "oe=false", *TEST_BUDGET])
    assert quantized["student"]["bytes"] > 0
    int8_file = Workspace(tmp_path / "int8").student_model
    data = load_params(REPO / "params.yaml", ["teacher=checkpoint", f"teacher_weights={int8_file}"]).data
    with pytest.raises(FsmcError, match=r"is an int8 model: it cannot be pruned"):
        load_user_teacher(data, CLASSES, (8, 8, 1))


def _params(weights, *extra: str):
    return load_params(REPO / "params.yaml", ["teacher=torchvision:resnet18", f"teacher_weights={weights}", *DIGITS_RGB32, *extra]).data


CLASSES = tuple(str(c) for c in range(10))


def test_a_pickled_module_is_refused_with_what_to_pass_instead(tmp_path):
    path = tmp_path / "whole-model.pt"
    torch.save(torchvision.models.resnet18(num_classes=10), path)
    with pytest.raises(FsmcError, match=r"pickled Python objects.*torch.save\(model.state_dict\(\), PATH\)"):
        load_user_teacher(_params(path), CLASSES, (32, 32, 3))


def test_weights_of_another_architecture_name_the_mismatching_layer(tmp_path):
    path = tmp_path / "resnet34.pt"
    torch.save(torchvision.models.resnet34(num_classes=10).state_dict(), path)
    with pytest.raises(FsmcError, match=r"architecture lacks \(e\.g\. 'layer1\.2\."):
        load_user_teacher(_params(path), CLASSES, (32, 32, 3))


def test_a_class_count_that_disagrees_with_the_data_is_refused(tmp_path):
    path = tmp_path / "five-classes.pt"
    torch.save(torchvision.models.resnet18(num_classes=5).state_dict(), path)
    with pytest.raises(FsmcError, match=r"has 5 classes \(layer 'fc'\) but the data has 10"):
        load_user_teacher(_params(path), CLASSES, (32, 32, 3))


def test_grey_images_for_an_rgb_teacher_say_which_setting_converts_them(tmp_path):
    path = tmp_path / "rgb.pt"
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), path)
    with pytest.raises(FsmcError, match=r"takes 3-channel images .* set data.image_channels=3"):
        load_user_teacher(_params(path, "image_channels=0", "normalization=0.5;0.25"), CLASSES, (32, 32, 1))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["teacher=torchvision:resnet18"], r"needs its trained weights: set data.teacher_weights"),
        (["teacher=torchvision:vgg11", "teacher_weights=x.pt"], r"does not exist for dataset 'digits'"),
        (["teacher_weights=x.pt"], r"applies only to a user's own teacher \(torchvision:NAME, timm:NAME, module:"),
        (["teacher=module:mypkg.nets", "teacher_weights=x.pt"], r"is not a factory name; write module:PKG.MODULE:FUNCTION"),
        (["teacher=modul:mypkg.nets:build"], r"or your own network's factory \(module:PKG.MODULE:FUNCTION\)"),
        (["teacher=torchvision:resnet18", "teacher_weights=x.pt", "normalization=0.5,0.5"], r"normalization='0.5,0.5' is not valid"),
        (["image_size=4"], r"image_size=4 must be 0"),
        (["teacher=models:/fsmc-student"], r"is not a registry URI; write models:/NAME/VERSION"),
        (["teacher=models:/fsmc-student/1", "teacher_weights=x.pt"], r"does not apply to a registry teacher"),
        (["teacher=checkpoint"], r"needs its trained weights: set data.teacher_weights=PATH to an fsmc checkpoint"),
        (["image_channels=2"], r"image_channels=2 must be 0"),
    ],
)
def test_bad_user_teacher_settings_are_refused_at_validation(overrides, message):
    with pytest.raises(FsmcError, match=message):
        load_params(REPO / "params.yaml", overrides)


FACTORY = "module:tests.user_models:build_user_net"


def _factory_spec(target: str = "tests.user_models:build_user_net") -> dict:
    return {"arch": "module", "kwargs": {"target": target, "num_classes": 10}, "mean": [0.5] * 3, "std": [0.25] * 3}


def test_a_users_own_network_splits_at_its_global_pooling_and_prunes_as_a_whole(tmp_path):
    torch.manual_seed(0)
    teacher = build(_factory_spec()).eval()
    images = torch.rand(4, 3, 16, 16)
    with torch.no_grad():
        features = teacher.forward_features(images)
        assert features.shape == (4, 32, 8, 8)  # the map x.mean((2, 3)) pools
        assert torch.equal(teacher.forward_head(features), teacher(images))
    assert teacher.classifier is teacher.net.model.logits
    student, kept = prune_channels(teacher, images, ratio=0.5)
    layers = dict(student.named_modules())
    # the residual stream of stage 1 is pruned with its stem; the 1x1 projection into stage 2 follows its input
    assert layers["net.model.stem.0"].out_channels == layers["net.model.block1.3"].out_channels == 8
    assert layers["net.model.project.0"].in_channels == 8
    # the feature width before pooling and the two-layer head stay the teacher's (mir reuses the head)
    assert layers["net.model.block2.3"].out_channels == 32 and student.net.model.hidden.weight.shape == (32, 32)
    assert model_cost(student, images).macs < 0.5 * model_cost(teacher, images).macs
    with torch.no_grad():
        pruned = student(images)
        assert torch.allclose(pruned, masked_copy(teacher, kept)(images), atol=1e-5)
        assert torch.equal(student.forward_head(student.forward_features(images)), pruned)
    save_checkpoint(tmp_path / "student.pt", student, _factory_spec())
    assert torch.equal(load_checkpoint(tmp_path / "student.pt")[0](images), pruned)


def test_an_untraceable_network_still_prunes_but_mir_and_int8_name_the_untraceable_line():
    teacher = build(_factory_spec("tests.user_models:build_data_dependent_net")).eval()
    images = torch.rand(4, 3, 16, 16)
    student, _ = prune_channels(teacher, images, ratio=0.5)  # torch-pruning needs no symbolic trace
    assert student(images).shape == (4, 10)
    untraceable = r"tracing stopped at .*tests/user_models.py:\d+: if x.mean\(\) > 10"
    with pytest.raises(FsmcError, match=untraceable + r".*Use method=kd or bp"):
        teacher.forward_features(images)
    with pytest.raises(FsmcError, match=r"scheme=int8-ptq needs torch.fx .*" + untraceable + r".*Use scheme=channel"):
        quantize_ptq(teacher, images)


@pytest.mark.parametrize(
    ("teacher", "message"),
    [
        ("module:tests.no_such_module:build", r"importing 'tests.no_such_module' failed \(ModuleNotFoundError"),
        ("module:tests.user_models:build_nothing", r"has no function 'build_nothing'; its public callables are: .*build_user_net"),
        ("module:tests.user_models:write_png_folder", r"calling it \(no arguments\) failed with TypeError: .*missing 5 required"),
    ],
)
def test_a_factory_that_cannot_build_the_network_says_why(teacher, message, tmp_path):
    weights = tmp_path / "w.pt"
    torch.save(build(_factory_spec()).net.model.state_dict(), weights)
    data = load_params(REPO / "params.yaml", [f"teacher={teacher}", f"teacher_weights={weights}", "image_size=16", "image_channels=3"]).data
    with pytest.raises(FsmcError, match=message):
        load_user_teacher(data, CLASSES, (16, 16, 3))


def test_a_network_with_another_class_count_than_the_data_is_refused(tmp_path):
    weights = tmp_path / "w.pt"
    torch.save(build(_factory_spec()).net.model.state_dict(), weights)
    overrides = [f"teacher_weights={weights}", "image_size=16", "image_channels=3"]
    data = load_params(REPO / "params.yaml", [f"teacher={FACTORY}", *overrides]).data
    with pytest.raises(FsmcError, match=r"has 10 classes \(layer 'logits'\) but the data has 5"):
        load_user_teacher(data, CLASSES[:5], (16, 16, 3))  # a factory taking num_classes: the weights disagree
    data = load_params(REPO / "params.yaml", ["teacher=module:tests.user_models:build_data_dependent_net", *overrides]).data
    with pytest.raises(FsmcError, match=r"has no nn.Linear layer with 5 outputs \(one per class of the data\)"):
        load_user_teacher(data, CLASSES[:5], (16, 16, 3))  # a factory with a fixed class count


@pytest.fixture(scope="module")
def user_net_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("factory") / "user-net-digits.pt"
    torch.manual_seed(0)
    accuracy = train_on_digits(UserNet(10), 16, 8, path)
    assert accuracy > 0.8, f"the fixture teacher itself is bad ({accuracy:.3f}): nothing below would mean anything"
    return path


@pytest.mark.slow
def test_every_method_recovers_a_pruned_network_of_the_users_own(user_net_weights, tmp_path):
    user = [f"teacher={FACTORY}", f"teacher_weights={user_net_weights}", "image_size=16", "image_channels=3", "recover.steps=60"]
    unrecovered = _run_pipeline(tmp_path / "none", [*user, "method=none", "oe=false"])
    assert unrecovered["teacher"]["top1"] > 0.8
    for method in ("bp", "kd", "fskd", "cd", "mir"):
        for oe in ("false", "true"):
            metrics = _run_pipeline(tmp_path / f"{method}-{oe}", [*user, f"method={method}", f"oe={oe}"])
            assert metrics["student"]["top1"] > unrecovered["student"]["top1"] + 0.1, (method, oe, metrics["student"]["top1"])


@pytest.mark.parametrize("spec", [_spec("resnet18"), _spec("mobilenet_v3_small"), _factory_spec()], ids=["resnet18", "mnv3", "own"])
def test_a_pruned_student_of_a_users_model_exports_to_onnx_that_agrees_with_torch(spec, tmp_path):
    torch.manual_seed(0)
    teacher = build(spec).eval()
    student, _ = prune_channels(teacher, torch.rand(2, 3, 32, 32), ratio=0.5)
    check = export_onnx(student.eval(), torch.rand(64, 3, 32, 32), tmp_path / "student.onnx")
    assert (tmp_path / "student.onnx").stat().st_size > 0
    assert check["prediction_agreement"] == 1.0 and check["max_abs_diff"] < 1e-3, check


def test_a_torchvision_resnet34_distils_into_a_resnet18_that_starts_from_its_blocks():
    torch.manual_seed(0)
    teacher = build(_spec("resnet34")).eval()
    images = torch.rand(2, 3, 32, 32)
    student, spec = smaller_student(teacher, _spec("resnet34"), "torchvision:resnet18", "teacher", images)
    assert spec["kwargs"]["name"] == "resnet18" and [len(student.net.model.layer3), len(teacher.net.model.layer3)] == [2, 6]
    # block 0 of each stage (stride, shortcut) and the last one are copied; stem and head are the teacher's
    assert torch.equal(student.net.model.layer3[0].conv1.weight, teacher.net.model.layer3[0].conv1.weight)
    assert torch.equal(student.net.model.layer3[1].conv2.weight, teacher.net.model.layer3[5].conv2.weight)
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)
    assert student(images).shape == (2, 10)
    assert model_cost(student, images).macs < 0.55 * model_cost(teacher, images).macs


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["teacher=torchvision:resnet50", "method=kd"], r"student_init='teacher' cannot start 'torchvision:resnet18' .*student_init=scratch"),
        (["teacher=torchvision:resnet50", "student_init=scratch"], r"'torchvision:resnet18' is narrower than 'torchvision:resnet50'"),
        (["teacher=torchvision:resnet18"], r"not a smaller architecture for teacher 'torchvision:resnet18'"),
    ],
)
def test_distillation_students_that_cannot_work_are_refused_at_validation(overrides, message):
    with pytest.raises(FsmcError, match=message):
        load_params(REPO / "params.yaml", ["scheme=distill", "teacher_weights=x.pt", *overrides])


@pytest.mark.slow
def test_distillation_into_a_smaller_torchvision_resnet_recovers(tmp_path_factory, tmp_path):
    weights = tmp_path_factory.mktemp("user") / "resnet34-digits.pt"
    assert train_torchvision_on_digits("resnet34", 32, 2, weights) > 0.8
    user = ["teacher=torchvision:resnet34", f"teacher_weights={weights}", *DIGITS_RGB32, "scheme=distill", "recover.steps=60"]
    unrecovered = _run_pipeline(tmp_path / "none", [*user, "method=none", "oe=false"])
    assert unrecovered["student"]["macs"] < 0.55 * unrecovered["teacher"]["macs"]
    for method, oe in (("kd", "true"), ("mir", "true")):
        metrics = _run_pipeline(tmp_path / f"{method}-{oe}", [*user, f"method={method}", f"oe={oe}"])
        assert metrics["student"]["top1"] > unrecovered["student"]["top1"] + 0.1, (method, oe, metrics["student"]["top1"])


def _timm_spec(name: str) -> dict:
    return {"arch": "timm", "kwargs": {"name": name, "num_classes": 10}, "mean": [0.5] * 3, "std": [0.25] * 3}


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv3_small_100"])
def test_a_timm_teacher_prunes_across_its_graph_and_keeps_its_head(name, tmp_path):
    torch.manual_seed(0)
    teacher = build(_timm_spec(name)).eval()
    images = torch.rand(4, 3, 32, 32)
    student, kept = prune_channels(teacher, images, ratio=0.5)
    assert model_cost(student, images).macs < 0.55 * model_cost(teacher, images).macs
    assert student.classifier.weight.shape == teacher.classifier.weight.shape, "the head (MobileNetV3: 1x1 conv + linear) stays whole"
    with torch.no_grad():
        pruned, masked = student(images), masked_copy(teacher, kept)(images)
        # the split at the global pooling follows the pruned layers (timm's BatchNormAct2d included)
        normalized = (images - torch.tensor(0.5)) / 0.25
        split = student.net.forward_head(student.net.forward_features(normalized))
    assert pruned.shape == (4, 10)
    assert torch.allclose(pruned, masked, atol=1e-5 * float(masked.abs().max()) + 1e-12)
    assert torch.allclose(split, pruned, atol=1e-6 * float(pruned.abs().max()) + 1e-12)
    save_checkpoint(tmp_path / "student.pt", student, _timm_spec(name))
    assert torch.equal(load_checkpoint(tmp_path / "student.pt")[0](images), pruned)


def test_an_unknown_timm_architecture_names_close_ones(tmp_path):
    with pytest.raises(FsmcError, match=r"data.teacher=timm:resnet_18 is not a timm architecture .*close names: .*resnet18"):
        build(_timm_spec("resnet_18"))


@pytest.mark.slow
def test_mir_and_kd_recover_a_pruned_timm_teacher(tmp_path_factory, tmp_path):
    import timm

    weights = tmp_path_factory.mktemp("timm") / "timm-resnet18-digits.pt"
    torch.manual_seed(0)
    accuracy = train_on_digits(timm.create_model("resnet18", pretrained=False, num_classes=10), 32, 2, weights)
    assert accuracy > 0.8, f"the fixture teacher itself is bad ({accuracy:.3f})"
    user = ["teacher=timm:resnet18", f"teacher_weights={weights}", *DIGITS_RGB32, "recover.steps=60"]
    unrecovered = _run_pipeline(tmp_path / "none", [*user, "method=none", "oe=false"])
    assert unrecovered["teacher"]["top1"] == pytest.approx(accuracy, abs=1e-9), "the state dict loaded into timm's resnet18 is the teacher"
    for method in ("kd", "mir"):
        metrics = _run_pipeline(tmp_path / method, [*user, f"method={method}", "oe=true"])
        assert metrics["student"]["top1"] > unrecovered["student"]["top1"] + 0.2, (method, metrics["student"]["top1"])
