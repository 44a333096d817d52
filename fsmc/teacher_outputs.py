"""Teacher outputs on fixed images, computed once and reused by every run and method.

Keyed by the teacher checkpoint's sha256 and the content hashes of the images
(in order), so the same teacher on the same manifest never runs twice. Only
un-augmented inputs can be cached: every recovery method here trains on fixed
images (no augmentation), so all of them read their teacher passes from here.
"""

from __future__ import annotations

import copy
import hashlib
import io
from pathlib import Path

import torch

from fsmc.cache import cache_key, cached_file
from fsmc.data.checksums import file_sha256
from fsmc.models.normalized import NormalizedClassifier
from fsmc.runtime import pick_device


def images_key(hashes: list[str]) -> str:
    """One key for an ordered list of image content hashes."""
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def _compute(teacher: NormalizedClassifier, images: torch.Tensor, with_features: bool, precision: str, batch_size: int = 256) -> dict:
    device = pick_device()
    # Channels-last: oneDNN's convolutions run faster on NHWC; the numbers are the same up to float order.
    layout = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    teacher = copy.deepcopy(teacher).to(device, memory_format=layout).eval()
    logits, features = [], []
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    with torch.inference_mode(), autocast:
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].to(device).contiguous(memory_format=layout)
            if with_features:  # one pass: the head (the model's own, hidden layers included) on the features
                batch_features = teacher.forward_features(batch)
                features.append(batch_features.float().cpu().contiguous())
                logits.append(teacher.forward_head(batch_features).float().cpu())
            else:
                logits.append(teacher(batch).float().cpu())
    empty = torch.empty(0)
    return {
        "logits": torch.cat(logits) if logits else empty,
        "features": torch.cat(features) if features else empty,
    }


def teacher_outputs(
    teacher_path: Path,
    teacher: NormalizedClassifier,
    images: torch.Tensor,
    key_of_images: str,
    with_features: bool = False,
    precision: str = "fp32",
) -> tuple[dict[str, torch.Tensor], bool]:
    """Logits (and, if asked, pre-pooling feature maps) of the teacher on ``images``, stored as float32.

    The key is the checkpoint's sha256, the ordered image hashes, the precision, and the
    code of this module and of every fsmc module it imports (:mod:`fsmc.code_closure`).
    ``precision="bf16"`` computes under bf16 autocast: training targets for a student that
    itself trains in bf16 (twice as fast where bf16 is native); measured metrics use fp32.

    Returns:
        (outputs, hit): the tensors and whether they came from the cache.
    """
    inputs = {"teacher": file_sha256(teacher_path), "images": key_of_images, "features": with_features, "precision": precision}
    # This module and all it imports (how tensors become outputs), and to_tensor's: the images arrive as tensors.
    key = cache_key(inputs, __name__, "fsmc.data.images")

    def produce(tmp: Path) -> None:
        buffer = io.BytesIO()
        torch.save(_compute(teacher, images, with_features, precision), buffer)
        tmp.write_bytes(buffer.getvalue())

    path, hit = cached_file("teacher-outputs", key, produce)
    return torch.load(path, map_location="cpu", weights_only=True), hit
