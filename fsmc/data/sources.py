"""One interface to every data source: ``load_dataset`` and ``load_ood_pool`` by name.

* ``digits``: sklearn's bundled digits (embedded, no files).
* ``cifar10``: ``<data dir>/cifar10/{train,test}.npz`` + ``classes.json`` (sha256-verified).
* ``folder:PATH``: a user's images, ``PATH/{train,test}/<class>/*.png|jpg`` (32x32 RGB after a box resize).
* OOD pools: ``photo-patches`` (embedded), ``tinyimagenet`` (``val.npz`` then
  ``train_subset.npz``, concatenated; the classes in ``cifar10_overlap.json`` are
  marked for exclusion), or ``folder:PATH`` (a user's class sub-folders of images).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from fsmc.config import DataParams
from fsmc.data.embedded import load_digits_dataset, load_photo_patches
from fsmc.data.fitting import fit_images
from fsmc.data.imagefolder import read_image_folder
from fsmc.data.images import ImageSet, LabelledDataset
from fsmc.data.npz_source import read_classes, read_json, read_split
from fsmc.errors import FsmcError


@dataclass(frozen=True)
class OodPool:
    """An OOD pool before curation: images, their source labels (-1 if none), labels to exclude."""

    name: str
    images: ImageSet
    excluded_labels: frozenset[int] = frozenset()


@lru_cache(maxsize=4)
def _cifar10() -> LabelledDataset:
    # Cached per process: several stages of one flow read the same 170 MB of arrays.
    classes = read_classes("cifar10")
    return LabelledDataset(
        name="cifar10",
        classes=classes,
        train=read_split("cifar10", "train", len(classes)),
        test=read_split("cifar10", "test", len(classes)),
    )


def load_dataset(data: DataParams) -> LabelledDataset:
    """The in-distribution dataset named by ``data.dataset``, fitted to ``data.image_size`` / ``image_channels``."""
    if not (data.image_size or data.image_channels):
        return _raw_dataset(data)
    return _fitted_dataset(data.dataset, data.test_fraction, data.split_seed, data.image_size, data.image_channels)


@lru_cache(maxsize=2)
def _fitted_dataset(name: str, test_fraction: float, split_seed: int, size: int, channels: int) -> LabelledDataset:
    # Cached per process like the raw data: every stage of a flow reads the same fitted arrays.
    raw = _raw_dataset(DataParams(dataset=name, test_fraction=test_fraction, split_seed=split_seed), read_size=size or 32)
    return dataclasses.replace(raw, train=fit_images(raw.train, size, channels), test=fit_images(raw.test, size, channels))


def folder_path(source: str) -> Path:
    """The folder a ``folder:PATH`` dataset or pool names, ``~`` expanded (params.yaml has no shell to do it)."""
    return Path(source.removeprefix("folder:")).expanduser()


def _raw_dataset(data: DataParams, read_size: int = 32) -> LabelledDataset:
    if data.dataset == "digits":
        return load_digits_dataset(data.test_fraction, data.split_seed)
    if data.dataset == "cifar10":
        return _cifar10()
    if data.dataset.startswith("folder:"):
        # Folders are read straight at the wanted size: no double resize of a user's photos.
        return _folder_dataset(folder_path(data.dataset), read_size)
    raise FsmcError(f"data.dataset={data.dataset!r} is unknown; valid datasets: digits, cifar10.")


@lru_cache(maxsize=4)
def _folder_dataset(root: Path, size: int = 32) -> LabelledDataset:
    classes, train = read_image_folder(root / "train", size)
    test_classes, test = read_image_folder(root / "test", size)
    if test_classes != classes:
        raise FsmcError(
            f"{root}/test has classes {list(test_classes)} but {root}/train has {list(classes)}; "
            "both must hold the same class sub-folders."
        )
    return LabelledDataset(name=root.name, classes=classes, train=train, test=test)


@lru_cache(maxsize=2)
def _tinyimagenet() -> OodPool:
    classes = read_classes("tinyimagenet")
    parts = [read_split("tinyimagenet", split, len(classes)) for split in ("val", "train_subset")]
    overlap = read_json("tinyimagenet", "cifar10_overlap.json")
    excluded = frozenset(int(item["label"]) for item in overlap["overlap"])
    images = ImageSet(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]), 255)
    return OodPool("tinyimagenet", images, excluded)


def forget_read_data() -> None:
    """Drop the arrays this process cached (datasets, pools, fitted copies), so the next read is cold (benchmarks)."""
    for cached in (_cifar10, _fitted_dataset, _folder_dataset, _tinyimagenet, _fitted_pool):
        cached.cache_clear()


def load_ood_pool(data: DataParams) -> OodPool:
    """The OOD pool for ``data`` before de-duplication and curation, fitted like the dataset."""
    if not (data.image_size or data.image_channels):
        return _raw_ood_pool(data)
    return _fitted_pool(data.resolved_ood_pool, data.image_size, data.image_channels)


@lru_cache(maxsize=2)
def _fitted_pool(pool: str, size: int, channels: int) -> OodPool:
    raw = _raw_ood_pool(DataParams(ood_pool=pool), read_size=size or 32)
    return dataclasses.replace(raw, images=fit_images(raw.images, size, channels))


def _raw_ood_pool(data: DataParams, read_size: int = 32) -> OodPool:
    pool = data.resolved_ood_pool
    if pool == "photo-patches":
        return OodPool(pool, load_photo_patches())
    if pool == "tinyimagenet":
        return _tinyimagenet()
    if pool.startswith("folder:"):
        _, images = read_image_folder(folder_path(pool), read_size)
        # Folder classes say nothing about the ID classes: no label is excluded, none is kept.
        return OodPool(pool, ImageSet(images.images, np.full(len(images), -1, dtype=np.int64), images.pixel_max))
    raise FsmcError(f"data.ood_pool={data.ood_pool!r} is unknown; valid: photo-patches, tinyimagenet, folder:PATH.")
