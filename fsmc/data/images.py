"""Image arrays as the pipeline passes them around, and their content hashes.

Images are kept as ``uint8`` arrays of shape N x H x W x C (the layout of the
CIFAR-10 npz files) with a per-dataset ``pixel_max``: 16 for sklearn's digits,
255 for photographs. Models receive float tensors in [0, 1] (``to_tensor``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch


@dataclass(frozen=True)
class ImageSet:
    """Images (uint8, N x H x W x C) with integer labels (-1 where unlabelled)."""

    images: np.ndarray
    labels: np.ndarray
    pixel_max: int

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> ImageSet:
        """The images at ``indices`` (a copy)."""
        return ImageSet(self.images[indices], self.labels[indices], self.pixel_max)

    @cached_property
    def _hashes(self) -> tuple[str, ...]:
        return tuple(image_hashes(self.images))

    def hashes(self) -> list[str]:
        """sha256 of each image's bytes (C order), the identity used in manifests (computed once per set)."""
        return list(self._hashes)


@dataclass(frozen=True)
class LabelledDataset:
    """An in-distribution dataset: class names plus train and test splits."""

    name: str
    classes: tuple[str, ...]
    train: ImageSet
    test: ImageSet

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]


def image_hashes(images: np.ndarray) -> list[str]:
    """sha256 hex digest of every image in an N x ... uint8 array."""
    contiguous = np.ascontiguousarray(images)
    return [hashlib.sha256(image.tobytes()).hexdigest() for image in contiguous]


def to_tensor(images: np.ndarray, pixel_max: int) -> torch.Tensor:
    """uint8 N x H x W x C -> float32 N x C x H x W in [0, 1]."""
    array = np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / float(pixel_max)
    return torch.from_numpy(array)
