"""Fit images to a teacher's input: square size and channel count.

A user's classifier was trained at its own resolution (224 x 224 RGB, say); the
few shots and the OOD pool must reach it in that shape. Resizing is bilinear with
antialiasing (torch), on the images' own pixel scale, rounded back to uint8, so
the result is deterministic and hashes the same on every run.
"""

from __future__ import annotations

import numpy as np
import torch

from fsmc.data.images import ImageSet

# ITU-R BT.601 luma weights: RGB -> grey as image libraries do it.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_CHUNK = 2048  # images resized at once: bounds the float copy's memory


def fit_images(images: ImageSet, size: int, channels: int) -> ImageSet:
    """``images`` resized to ``size`` x ``size`` (0: unchanged) with ``channels`` channels (0: unchanged)."""
    array = images.images
    if channels and array.shape[-1] != channels:
        if channels == 3:
            array = np.repeat(array, 3, axis=-1)
        else:
            array = np.rint(array.astype(np.float32) @ _LUMA[:, None]).clip(0, images.pixel_max).astype(np.uint8)
    if size and array.shape[1:3] != (size, size):
        parts = []
        for start in range(0, len(array), _CHUNK):
            chunk = torch.from_numpy(np.ascontiguousarray(array[start : start + _CHUNK].transpose(0, 3, 1, 2))).float()
            resized = torch.nn.functional.interpolate(chunk, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
            parts.append(resized.round().clamp(0, images.pixel_max).to(torch.uint8).permute(0, 2, 3, 1).numpy())
        array = np.concatenate(parts) if parts else np.zeros((0, size, size, array.shape[-1]), dtype=np.uint8)
    if array is images.images:
        return images
    return ImageSet(np.ascontiguousarray(array), images.labels, images.pixel_max)
