"""The embedded default data, which needs no files: sklearn's bundled digits and photos.

In-distribution: ``load_digits`` (1,797 grayscale 8x8 images, values 0..16, 10
classes), split train/test by a seeded stratified split.

OOD pool: 8x8 edge maps of ``load_sample_images`` (two colour photos). Each
32x32 grayscale window on a 16-pixel grid becomes its gradient magnitude,
averaged down 4x4 to 8x8; then the darker half of its pixels is set to 0 and
the brighter half ramps linearly by rank up to 16. So the pool looks like the
digits (bright strokes on a black background, about half the pixels 0, the
same size, range and dtype) but holds no digit. Why edges and not the photos'
intensities: a contrast-stretched photo patch has almost no black pixels (4 %
against the digits' 49 %), and mixing such images into every training batch
shifted BatchNorm's statistics enough that the OOD plug-in lost accuracy in
short runs (smoke preset, 60 steps, 3 seeds: kd 96.60 -> 95.43, mir 98.40 ->
96.36 with the old patches; 97.65 and 98.33 with these; benchmarks/LOG.md).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
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
    """OOD pool: 8x8 stroke-like edge maps of sklearn's sample photos, in the digits' 0..16 range."""
    patches = []
    for photo in load_sample_images().images:
        gray = photo.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        rows, cols = np.gradient(gray)
        edges = np.hypot(rows, cols)
        height, width = gray.shape
        for top in range(0, height - _WINDOW + 1, _STRIDE):
            for left in range(0, width - _WINDOW + 1, _STRIDE):
                window = edges[top : top + _WINDOW, left : left + _WINDOW]
                patches.append(_strokes(window.reshape(8, 4, 8, 4).mean(axis=(1, 3))))
    images = np.stack(patches)[..., None]
    return ImageSet(images, np.full(len(images), -1, dtype=np.int64), DIGITS_PIXEL_MAX)


def _strokes(edge_map: np.ndarray) -> np.ndarray:
    """An 8x8 edge map as uint8 0..16 strokes: the darker half of the pixels 0, the rest ramping by rank to 16."""
    if edge_map.max() - edge_map.min() < 1e-6:
        # A flat window has no edges; ranking its pixels would only invent a pattern.
        return np.zeros(edge_map.shape, dtype=np.uint8)
    quantile = (rankdata(edge_map, method="average").reshape(edge_map.shape) - 1) / (edge_map.size - 1)
    return np.rint(DIGITS_PIXEL_MAX * np.clip((quantile - 0.5) / 0.5, 0, 1)).astype(np.uint8)
