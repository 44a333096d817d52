"""A user's own classifier as the teacher: a torchvision architecture or the user's own factory function
(``module:PKG.MODULE:FUNCTION``) plus a state-dict file, or an fsmc checkpoint (a student fsmc registered, as the teacher of the next round).

The weights are read with ``torch.load(weights_only=True)`` and their sha256 is
recorded, so a run names exactly which file it compressed. Everything that can be
checked before any work is checked here, each with an error that says what to pass
instead: the file is a state dict (not a pickled module), it fits the architecture
layer by layer, its class count is the dataset's, its input channels are the
data's, and the model maps N x C x H x W images to N x classes logits.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fsmc.atomic import read_json, sha256_file
from fsmc.config import CHECKPOINT_TEACHER, DataParams
from fsmc.errors import FsmcError
from fsmc.models.checkpoint import load_checkpoint
from fsmc.models.factory_net import factory_source_sha256
from fsmc.models.input_contract import InputContract, check_against_contract
from fsmc.models.int8_graph import QUANTIZATION_TAG
from fsmc.models.normalized import NormalizedClassifier
from fsmc.models.registry import load_state_dict_checked
from fsmc.models.trusted_pickle import TRUST_KEY, trust_module_file
from fsmc.models.zoo import build


@dataclass(frozen=True)
class UserTeacher:
    """The loaded teacher, the spec that rebuilds it, and where its weights came from."""

    model: NormalizedClassifier
    spec: dict[str, Any]
    source: dict[str, str]


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise FsmcError(
            f"data.teacher_weights={str(path)!r} is not a state dict: it holds pickled Python objects (a whole model "
            "saved with torch.save(model), say), and fsmc does not unpickle those because loading one runs arbitrary "
            "code. Save the weights with torch.save(model.state_dict(), PATH) and pass that file."
        ) from None
    except Exception as error:  # RuntimeError for a file that is no torch archive at all
        raise FsmcError(
            f"data.teacher_weights={str(path)!r} could not be read as a torch state dict ({error}); pass a file "
            "written by torch.save(model.state_dict(), PATH)."
        ) from None
    if isinstance(blob, dict) and isinstance(blob.get("state_dict"), dict):
        blob = blob["state_dict"]  # a training checkpoint that wraps the weights
    if not isinstance(blob, dict) or not all(isinstance(v, torch.Tensor) for v in blob.values()):
        raise FsmcError(
            f"data.teacher_weights={str(path)!r} holds a {type(blob).__name__}, not a mapping of layer names to "
            "tensors; save it with torch.save(model.state_dict(), PATH)."
        )
    return {k.removeprefix("module."): v for k, v in blob.items()}  # DataParallel's prefix


def load_user_teacher(data: DataParams, classes: tuple[str, ...], image_shape: tuple[int, int, int], trust_pickle: bool = False) -> UserTeacher:
    """Load ``data.teacher`` (``torchvision:NAME`` or ``checkpoint``) from ``data.teacher_weights`` for ``classes``.

    Args:
        data: the data section (teacher, weights file, normalisation).
        classes: the dataset's class names, in label order.
        image_shape: (H, W, C) of the dataset's images as the teacher will see them.
        trust_pickle: ``teacher.trust_pickle``; a registry teacher fetched as a pickled module loads only when true.
    """
    if data.registry_teacher:
        path = registry_teacher_file(data.teacher)
        if not path.is_file():
            raise FsmcError(
                f"data.teacher={data.teacher!r} has not been fetched from the MLflow registry: `fsmc run` fetches it "
                f"before the pipeline; for `dvc repro`, run `fsmc pull-teacher {data.teacher}` first."
            )
        record = registry_teacher_record(data.teacher)
        if record is not None:  # the class order and input size the teacher was registered with
            check_against_contract(InputContract.from_record(record), data.teacher, classes, image_shape)
        if record is not None and record.get("format") == "pickle":
            return _from_trusted_pickle(path, data, classes, image_shape, trust_pickle)
        return _from_checkpoint(path, data, classes, image_shape)
    path = Path(data.teacher_weights).expanduser()
    if not path.is_file():
        raise FsmcError(
            f"data.teacher_weights={data.teacher_weights!r} does not exist; pass the file your model's "
            + ("fsmc checkpoint is in." if data.teacher == CHECKPOINT_TEACHER else "state_dict() was saved to.")
        )
    if data.teacher == CHECKPOINT_TEACHER:
        return _from_checkpoint(path, data, classes, image_shape)
    if data.torchvision_arch is None and data.timm_arch is None and data.module_target is None:
        raise FsmcError(f"data.teacher={data.teacher!r} is not a user teacher (torchvision:NAME, timm:NAME, module:..., or checkpoint).")
    height, width, channels = image_shape
    mean, std = _normalization(data, channels)
    spec = {"arch": "torchvision", "kwargs": {"name": data.torchvision_arch, "num_classes": len(classes)}, "mean": mean, "std": std}
    if data.timm_arch is not None:
        spec = {"arch": "timm", "kwargs": {"name": data.timm_arch, "num_classes": len(classes)}, "mean": mean, "std": std}
    if data.module_target is not None:
        target = data.module_target
        spec = {"arch": "module", "kwargs": {"target": target, "num_classes": len(classes), "source_sha256": factory_source_sha256(target)}}
        spec |= {"mean": mean, "std": std}
    model = build(spec)
    state = _read_state_dict(path)
    net = model.net.model
    head = next(name for name, module in net.named_modules() if module is model.classifier)
    if f"{head}.weight" in state and state[f"{head}.weight"].shape[0] != len(classes):
        raise FsmcError(
            f"The teacher in {path} has {state[f'{head}.weight'].shape[0]} classes (layer {head!r}) but the data has "
            f"{len(classes)} ({', '.join(classes[:6])}{', ...' if len(classes) > 6 else ''}); pass the dataset the "
            "model was trained for, or the model trained for this dataset."
        )
    first_conv = next((name for name, module in net.named_modules() if isinstance(module, torch.nn.Conv2d)), None)
    if first_conv is not None and f"{first_conv}.weight" in state and state[f"{first_conv}.weight"].shape[1] != channels:
        expected = state[f"{first_conv}.weight"].shape[1]
        raise FsmcError(
            f"The teacher in {path} takes {expected}-channel images (layer {first_conv!r}) but the data has {channels}; "
            f"set data.image_channels={expected} to convert the images."
        )
    load_state_dict_checked(net, state, f"data.teacher_weights={str(path)!r} ({data.teacher})")
    return _checked(model, spec, path, data, classes, image_shape)


def _normalization(data: DataParams, channels: int) -> tuple[list[float], list[float]]:
    mean, std = data.teacher_normalization(channels)
    if len(mean) != channels:
        raise FsmcError(
            f"data.normalization={data.normalization!r} gives {len(mean)} channel means but the images have "
            f"{channels} channels; give one mean and one std per channel."
        )
    return mean, std


def _from_trusted_pickle(path: Path, data: DataParams, classes: tuple[str, ...], image_shape: tuple[int, int, int], trust_pickle: bool) -> UserTeacher:
    """A registry teacher fetched as a pickled module: unpickled only with the user's opt-in, then checked as any other."""
    if not trust_pickle:
        raise FsmcError(
            f"data.teacher={data.teacher!r} is a pickled module (registered by another tool), and {TRUST_KEY} is false: "
            "fsmc does not unpickle it, because loading a pickle runs code from the file. If you trust this registry, "
            f"set --set {TRUST_KEY}=true; otherwise register the model's state dict with `fsmc register-teacher`."
        )
    mean, std = _normalization(data, image_shape[2])
    spec = {"arch": "pickled", "kwargs": {"sha256": trust_module_file(path), "num_classes": len(classes)}, "mean": mean, "std": std}
    return _checked(build(spec), spec, path, data, classes, image_shape)


def _from_checkpoint(path: Path, data: DataParams, classes: tuple[str, ...], image_shape: tuple[int, int, int]) -> UserTeacher:
    model, spec, meta = load_checkpoint(path)
    if meta.get("quantization") == QUANTIZATION_TAG:
        raise FsmcError(
            f"The teacher in {path} is an int8 model: it cannot be pruned or distilled from further. "
            "Use the float checkpoint it was converted from as the teacher."
        )
    return _checked(model, spec, path, data, classes, image_shape)


def _checked(
    model: NormalizedClassifier,
    spec: dict[str, Any],
    path: Path,
    data: DataParams,
    classes: tuple[str, ...],
    image_shape: tuple[int, int, int],
) -> UserTeacher:
    """The teacher, once it is known to map the data's images to one logit per class."""
    height, width, channels = image_shape
    outputs = model.classifier.weight.shape[0]
    if outputs != len(classes):
        raise FsmcError(
            f"The teacher in {path} has {outputs} classes but the data has {len(classes)} "
            f"({', '.join(classes[:6])}{', ...' if len(classes) > 6 else ''}); pass the dataset the model was "
            "trained for, or the model trained for this dataset."
        )
    if len(spec["mean"]) != channels:
        raise FsmcError(
            f"The teacher in {path} takes {len(spec['mean'])}-channel images but the data has {channels}; "
            f"set data.image_channels={len(spec['mean'])} to convert the images."
        )
    model.eval()
    with torch.no_grad():
        logits = model(torch.zeros(2, channels, height, width))
    if logits.shape != (2, len(classes)):
        raise FsmcError(
            f"The teacher {data.teacher} maps a batch of 2 images of {channels}x{height}x{width} to outputs of shape "
            f"{tuple(logits.shape)}; fsmc needs N x {len(classes)} logits."
        )
    source = {"teacher": data.teacher, "weights": str(path.resolve()), "weights_sha256": sha256_file(path)}
    return UserTeacher(model, spec, source)


def teacher_weights_file(data: DataParams) -> Path:
    """The local file a user teacher's weights are read from (a registry teacher's fetched checkpoint)."""
    return registry_teacher_file(data.teacher) if data.registry_teacher else Path(data.teacher_weights).expanduser()


def registry_teacher_file(uri: str) -> Path:
    """Where ``fsmc run`` puts the fsmc checkpoint of registry teacher ``uri`` (fetched fresh before each run)."""
    from fsmc.cache import cache_dir

    return cache_dir() / "registry-teachers" / f"{hashlib.sha256(uri.encode()).hexdigest()[:24]}.pt"


def registry_teacher_record(uri: str) -> dict[str, Any] | None:
    """The lineage and input contract recorded when registry teacher ``uri`` was fetched (``None``: never fetched)."""
    record = registry_teacher_file(uri).with_suffix(".json")
    return read_json(record) if record.is_file() else None
