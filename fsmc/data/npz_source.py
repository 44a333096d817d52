"""Datasets stored as ``<data dir>/<name>/<split>.npz`` + ``classes.json`` (the layout CI uses).

Each npz holds ``images`` (uint8, N x H x W x 3) and ``labels`` (int64, N); labels
index ``classes.json``. Files at known paths are sha256-verified.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fsmc.data.checksums import KNOWN_DATA, verify
from fsmc.errors import FsmcError

if TYPE_CHECKING:  # ImageSet's module imports torch: the command line checks files before that (fsmc.preflight)
    from fsmc.data.images import ImageSet

# Datasets and OOD pools stored in this layout under the data directory.
NPZ_DATASETS = ("cifar10", "tinyimagenet")
LAYOUT = "<data dir>/<dataset>/{train,test,val,...}.npz with arrays images (uint8 N x H x W x 3) and labels (int64 N), plus classes.json"


def data_dir() -> Path:
    """``$FSMC_DATA_DIR`` (set by ``--data-dir``), else ``~/.cache/fsmc/datasets``."""
    if explicit := os.environ.get("FSMC_DATA_DIR"):
        return Path(explicit)
    from fsmc.cache import cache_dir

    return cache_dir() / "datasets"


def _existing(relative: str) -> Path:
    path = data_dir() / relative
    if not path.is_file():
        raise FsmcError(
            f"Missing data file {path}. fsmc expects the layout {LAYOUT}; point FSMC_DATA_DIR or --data-dir at "
            "the folder that holds it."
        )
    verify(path, KNOWN_DATA.get(relative), relative)
    return path


def read_classes(dataset: str, file: str = "classes.json") -> tuple[str, ...]:
    """Class names of ``dataset`` in label order."""
    path = _existing(f"{dataset}/{file}")
    names = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise FsmcError(f"{path} must be a JSON list of class names in label order.")
    return tuple(names)


def read_json(dataset: str, file: str):
    """A verified JSON side file of ``dataset`` (e.g. an overlap list)."""
    return json.loads(_existing(f"{dataset}/{file}").read_text(encoding="utf-8"))


def read_split(dataset: str, split: str, num_classes: int, size: int = 32) -> ImageSet:
    """Load and check one split; refuse wrong keys, shapes, dtypes or labels."""
    from fsmc.data.images import ImageSet

    relative = f"{dataset}/{split}.npz"
    path = _existing(relative)
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"images", "labels"} - set(archive.files)
            if missing:
                raise FsmcError(f"{path} lacks the arrays {sorted(missing)}; expected {LAYOUT}.")
            images, labels = archive["images"], archive["labels"]
    except (OSError, ValueError) as error:
        raise FsmcError(f"{path} is not a readable npz archive ({error}); expected {LAYOUT}.") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (size, size, 3):
        raise FsmcError(
            f"{path}: images have dtype {images.dtype} and shape {images.shape}; expected uint8 N x {size} x {size} x 3."
        )
    if labels.dtype != np.int64 or labels.shape != (len(images),):
        raise FsmcError(f"{path}: labels have dtype {labels.dtype} and shape {labels.shape}; expected int64 ({len(images)},).")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise FsmcError(
            f"{path}: labels range over {labels.min()}..{labels.max()} but classes.json names {num_classes} classes "
            f"(valid labels 0..{num_classes - 1})."
        )
    return ImageSet(images, labels, 255)
