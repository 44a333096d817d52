"""The embedded default data, which needs no files: sklearn's bundled digits and photos.

In-distribution: ``load_digits`` (1,797 grayscale 8x8 images, values 0..16, 10
classes), split train/test by a seeded stratified split.

OOD pool: 8x8 patches of ``load_sample_images`` (two colour photos). Each
32x32 grayscale window on a 16-pixel grid is averaged down 4x4 to 8x8 and
contrast-stretched to the digits' 0..16 integer range, so the pool looks like
the digits statistically (same size, range and dtype) but holds no digit.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits, load_sample_images
from sklearn.model_selection import train_test_split

from fsmc.data.images import ImageSet, LabelledDataset

DIGITS_PIXEL_MAX = 16
_WINDOW = 32  # photo window cut per patch, averaged down to 8x8
_STRIDE = 16


def load_digits_dataset(test_fraction: float, split_seed: int) -> LabelledDataset:
    """sklearn digits as uint8 N x 8 x 8 x 1 with a stratified train/test split."""
    digits = load_digits()
    images = digits.images.astype(np.uint8)[..., None]
    labels = digits.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=test_fraction, random_state=split_seed, stratify=labels
    )
    # Sorted so a split index means the same image however the split was drawn.
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    return LabelledDataset(
        name="digits",
        classes=tuple(str(c) for c in digits.target_names),
        train=ImageSet(images[train_idx], labels[train_idx], DIGITS_PIXEL_MAX),
        test=ImageSet(images[test_idx], labels[test_idx], DIGITS_PIXEL_MAX),
    )


def load_photo_patches() -> ImageSet:
    """OOD pool: 8x8 grayscale patches of sklearn's sample photos, scaled to 0..16."""
    patches = []
    for photo in load_sample_images().images:
        gray = photo.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        height, width = gray.shape
        for top in range(0, height - _WINDOW + 1, _STRIDE):
            for left in range(0, width - _WINDOW + 1, _STRIDE):
                window = gray[top : top + _WINDOW, left : left + _WINDOW]
                small = window.reshape(8, 4, 8, 4).mean(axis=(1, 3))
                low, high = small.min(), small.max()
                # Flat patches carry no structure; stretching them would only amplify noise.
                scaled = np.zeros_like(small) if high - low < 1e-6 else (small - low) / (high - low)
                patches.append(np.rint(scaled * DIGITS_PIXEL_MAX).astype(np.uint8))
    images = np.stack(patches)[..., None]
    return ImageSet(images, np.full(len(images), -1, dtype=np.int64), DIGITS_PIXEL_MAX)
