"""Pretrained teachers: where their weights live, their sha256, and the normalisation they were trained with.

Weights come from the model directory (``$FSMC_MODEL_DIR`` / ``--model-dir``),
are sha256-verified and loaded with ``torch.load(weights_only=True)``. When a
file is missing and ``FSMC_ALLOW_DOWNLOAD=1``, it is fetched from its URL first
(and verified the same way); tests never download.
"""

from __future__ import annotations

import hashlib
import io
import os
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fsmc.atomic import write_bytes
from fsmc.data.checksums import verify
from fsmc.errors import FsmcError
from fsmc.models.normalized import NormalizedClassifier
from fsmc.models.zoo import build

# The normalisation the public CIFAR ResNets were trained with (ImageNet statistics, RGB in [0, 1]).
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
_AKAMASTER = "https://github.com/akamaster/pytorch_resnet_cifar10/raw/d5489e8995e81e91ce6b1d69dcc98ad579b0b153/pretrained_models/"


@dataclass(frozen=True)
class PretrainedTeacher:
    """One entry of the teacher zoo."""

    name: str
    arch: str
    kwargs: dict[str, Any]
    file: str  # relative to the model directory
    sha256: str
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))
    url: str | None = None
    recorded_test_acc: float | None = None  # on the JPEG-q75 CIFAR-10 test split (../shared/models/README.md)

    @property
    def spec(self) -> dict[str, Any]:
        return {"arch": self.arch, "kwargs": dict(self.kwargs), "mean": list(self.mean), "std": list(self.std)}


def _resnet(name: str, depth: int, file: str, sha: str, acc: float | None, url: bool = True) -> PretrainedTeacher:
    return PretrainedTeacher(
        name=name,
        arch="cifar-resnet",
        kwargs={"depth": depth, "num_classes": 10},
        file=file,
        sha256=sha,
        url=_AKAMASTER + Path(file).name if url else None,
        recorded_test_acc=acc,
    )


PRETRAINED = {
    t.name: t
    for t in (
        _resnet("resnet20", 20, "cifar10-resnet/resnet20-12fca82f.th", "12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8", 0.8103),
        _resnet("resnet32", 32, "cifar10-resnet/resnet32-d509ac18.th", "d509ac1820d7f25398913559d7e81a13229b1e7adc5648e3bfa5e22dc137f850", None),
        _resnet("resnet44", 44, "cifar10-resnet/resnet44-014dd654.th", "014dd6541728a1c700b1642ab640e211dc6eb8ed507d70697458dc8f8a0ae2e4", None),
        _resnet("resnet56", 56, "cifar10-resnet/resnet56-4bfd9763.th", "4bfd97631478d6b638d2764fd2baff3edb1d7d82252d54439343b6596b9b5367", 0.8320),
        # Adapted to the JPEG-q75 copy by fsmc's `teacher` stage recipe (3 epochs; ../shared/models/README.md).
        _resnet(
            "resnet20-jpeg", 20, "cifar10-jpeg/resnet20-249d1d06.pt", "249d1d06a2128e09ae6187b4582aa745a48ffc1e23d25a9c5b125540ae727f94", 0.8767, url=False
        ),
        _resnet(
            "resnet56-jpeg", 56, "cifar10-jpeg/resnet56-b51b123b.pt", "b51b123b1a051b8767e0bc7d5747f261d46d195c909333a99b5f5f722222d1f5", 0.8964, url=False
        ),
    )
}


def model_dir() -> Path:
    """``$FSMC_MODEL_DIR`` (set by ``--model-dir``), else ``~/.cache/fsmc/models``."""
    if explicit := os.environ.get("FSMC_MODEL_DIR"):
        return Path(explicit)
    from fsmc.cache import cache_dir

    return cache_dir() / "models"


def _fetch(entry: PretrainedTeacher, path: Path) -> None:
    if entry.url is None or os.environ.get("FSMC_ALLOW_DOWNLOAD") != "1":
        how = f"; or set FSMC_ALLOW_DOWNLOAD=1 to fetch it from {entry.url}" if entry.url else ""
        raise FsmcError(
            f"Missing weights for teacher {entry.name!r}: expected {path} (sha256 {entry.sha256}). "
            f"Point FSMC_MODEL_DIR or --model-dir at the folder holding {entry.file}{how}."
        )
    try:
        with urllib.request.urlopen(entry.url, timeout=60) as response:  # noqa: S310 (fixed https URL)
            payload = response.read()
    except OSError as error:  # URLError, timeouts, refused connections
        raise FsmcError(f"Could not download teacher {entry.name!r} from {entry.url}: {error}.") from None
    actual = hashlib.sha256(payload).hexdigest()
    if actual != entry.sha256:  # never leave a bad download where the next run would find it
        raise FsmcError(f"Download of {entry.url} has sha256 {actual}, expected {entry.sha256}; nothing was saved.")
    write_bytes(path, payload)


def load_state_dict_checked(model: torch.nn.Module, state: dict[str, torch.Tensor], source: object) -> None:
    """``load_state_dict(strict=True)`` with errors that name the first mismatching layer."""
    expected = model.state_dict()
    # Checkpoints from before torch 0.4.1 lack BatchNorm's step counter; it does not affect outputs.
    state = {**{k: v for k, v in expected.items() if k.endswith("num_batches_tracked")}, **state}
    for key, tensor in expected.items():
        if key not in state:
            raise FsmcError(f"{source} has no weights for layer {key!r}: it is a checkpoint of another architecture.")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise FsmcError(
                f"{source}: layer {key!r} has shape {tuple(state[key].shape)} but the architecture expects "
                f"{tuple(tensor.shape)}; the checkpoint is for another architecture or depth."
            )
    extra = sorted(set(state) - set(expected))
    if extra:
        raise FsmcError(f"{source} has weights the architecture lacks (e.g. {extra[0]!r}): another architecture.")
    model.load_state_dict(state, strict=True)


def load_pretrained(name: str) -> NormalizedClassifier:
    """The pretrained teacher ``name``, verified and wrapped with its normalisation (eval mode)."""
    if name not in PRETRAINED:
        raise FsmcError(f"Unknown pretrained teacher {name!r}; known: {', '.join(PRETRAINED)}.")
    entry = PRETRAINED[name]
    path = model_dir() / entry.file
    if not path.is_file():
        _fetch(entry, path)
    verify(path, entry.sha256, f"teacher {name!r}")
    try:
        blob = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError for pickles weights_only refuses, RuntimeError for bad zips
        raise FsmcError(f"{path} could not be loaded with torch.load(weights_only=True): {error}") from None
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise FsmcError(f"{path} holds no state dict.")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = build(entry.spec)
    load_state_dict_checked(model.net, state, path)
    return model.eval()
