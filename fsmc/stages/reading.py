"""Reading what earlier stages wrote: manifests back into images, checkpoints into models."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fsmc.config import Params
from fsmc.data.images import ImageSet, LabelledDataset
from fsmc.data.manifest import FEW_SHOT_COLUMNS, OOD_COLUMNS, read_manifest
from fsmc.data.sources import load_dataset, load_ood_pool
from fsmc.errors import FsmcError
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
