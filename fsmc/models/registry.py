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
from pathlib import Path

import torch

from fsmc.atomic import write_bytes
from fsmc.data.checksums import verify
from fsmc.errors import FsmcError
from fsmc.models.normalized import NormalizedClassifier
from fsmc.models.pretrained import PRETRAINED, PretrainedTeacher, model_dir
from fsmc.models.zoo import build


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
