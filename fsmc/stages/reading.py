"""Reading what earlier stages wrote: manifests back into images, checkpoints into models."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from fsmc.config import Params
from fsmc.data.images import ImageSet, LabelledDataset, to_tensor
from fsmc.data.manifest import FEW_SHOT_COLUMNS, OOD_COLUMNS, read_manifest
from fsmc.data.sources import load_dataset, load_ood_pool
from fsmc.errors import FsmcError
from fsmc.models.checkpoint import load_checkpoint
from fsmc.recover.data import RecoveryData
from fsmc.runtime import pick_device, training_precision
from fsmc.teacher_outputs import images_key, teacher_outputs
from fsmc.workspace import Workspace


def _rows(frame: pd.DataFrame, size: int, path: object) -> np.ndarray:
    indices = frame["index"].to_numpy(dtype=np.int64)
    if len(indices) and (indices.min() < 0 or indices.max() >= size):
        raise FsmcError(f"Manifest {path} names image indices outside 0..{size - 1}; it does not belong to this dataset.")
    return indices


def few_shot_set(params: Params, ws: Workspace) -> tuple[LabelledDataset, pd.DataFrame, ImageSet]:
    """The dataset, the few-shot manifest frame and the images it names (with the dataset's labels)."""
    dataset = load_dataset(params.data)
    frame = read_manifest(ws.few_shot_manifest, FEW_SHOT_COLUMNS)
    return dataset, frame, dataset.train.subset(_rows(frame, len(dataset.train), ws.few_shot_manifest))


def ood_set(params: Params, ws: Workspace) -> tuple[pd.DataFrame, ImageSet]:
    """The OOD manifest frame and the pool images it names."""
    pool = load_ood_pool(params.data).images
    frame = read_manifest(ws.ood_manifest, OOD_COLUMNS)
    return frame, pool.subset(_rows(frame, len(pool), ws.ood_manifest))


@dataclass(frozen=True)
class RecoveryInputs:
    """What recovery starts from: the teacher, the few-shot and OOD images with its outputs, and which outputs were cached."""

    teacher: nn.Module
    data: RecoveryData
    cache_hits: dict[str, bool]  # {"few_shot": ..., "ood": ...}: teacher outputs read from the cache, not computed


def recovery_inputs(params: Params, ws: Workspace, with_features: bool) -> RecoveryInputs:
    """The manifests read back into tensors, with the teacher's outputs on them (computed once, then cached).

    ``with_features``: also the teacher's pre-pooling feature maps (for methods that mimic them).
    """
    teacher, _, _ = load_checkpoint(ws.teacher_model)
    dataset, few_frame, few = few_shot_set(params, ws)
    ood_frame, ood = ood_set(params, ws)
    images, ood_images = to_tensor(few.images, few.pixel_max), to_tensor(ood.images, ood.pixel_max)
    # Targets in the precision the student trains in (bf16 where native): half the time, same accuracy (benchmarks/LOG.md).
    precision = training_precision(params.recover.precision, pick_device())
    few_out, few_hit = teacher_outputs(ws.teacher_model, teacher, images, images_key(list(few_frame["sha256"])), with_features, precision)
    ood_out, ood_hit = teacher_outputs(ws.teacher_model, teacher, ood_images, images_key(list(ood_frame["sha256"])), with_features, precision)
    data = RecoveryData(
        images=images,
        labels=torch.from_numpy(few.labels),
        ood_images=ood_images,
        num_classes=dataset.num_classes,
        teacher_logits=few_out["logits"],
        teacher_ood_logits=ood_out["logits"].reshape(len(ood_images), dataset.num_classes),
        teacher_features=few_out["features"],
        teacher_ood_features=ood_out["features"],
    )
    return RecoveryInputs(teacher, data, {"few_shot": few_hit, "ood": ood_hit})
