"""Check every input a run needs before any work starts: data files, OOD pool, teacher weights.

Bad input must fail fast and write nothing, so the CLI calls this before the
flow. Loading is not wasted: the datasets are cached per process, and the flow
runs in the same process.
"""

from __future__ import annotations

import os

from fsmc.config import Params
from fsmc.data.checksums import verify
from fsmc.data.npz_source import NPZ_DATASETS, read_classes
from fsmc.errors import FsmcError
from fsmc.models.pretrained import PRETRAINED, model_dir


def check_inputs(params: Params, ood_pool: bool = True) -> None:
    """Raise :class:`FsmcError` naming the first missing, corrupt or malformed input.

    Args:
        params: validated params.
        ood_pool: also check the OOD pool (``fsmc register-teacher`` reads none, so a folder dataset needs no pool there).
    """
    check_files(params, ood_pool)
    # Imported only now: a missing file is named in about a second, before torch and the datasets load.
    from fsmc.data.sources import load_dataset, load_ood_pool
    from fsmc.models.user_teacher import load_user_teacher

    dataset = load_dataset(params.data)
    if ood_pool:
        pool = load_ood_pool(params.data)
        if pool.images.images.shape[1:] != dataset.train.images.shape[1:]:
            raise FsmcError(
                f"OOD pool {pool.name!r} has images of shape {pool.images.images.shape[1:]} but {dataset.name} has "
                f"{dataset.train.images.shape[1:]}; choose a pool of the same image size."
            )
    if params.data.user_teacher:  # weights, classes, channels and output shape, before any work
        load_user_teacher(params.data, dataset.classes, dataset.image_shape)


def check_files(params: Params, ood_pool: bool = True) -> None:
    """The files a run reads first (class lists of npz datasets and pools, a zoo teacher's weights), checked without torch."""
    for name in (params.data.dataset, params.data.resolved_ood_pool if ood_pool else None):
        if name in NPZ_DATASETS:
            read_classes(name)  # names the missing file and the layout fsmc expects
    entry = PRETRAINED.get(params.data.teacher)
    if entry is not None:
        path = model_dir() / entry.file
        if path.is_file():
            verify(path, entry.sha256, f"teacher {entry.name!r}")
        elif entry.url is None or os.environ.get("FSMC_ALLOW_DOWNLOAD") != "1":
            how = f", or set FSMC_ALLOW_DOWNLOAD=1 to fetch it from {entry.url}" if entry.url else ""
            raise FsmcError(
                f"Missing weights for teacher {entry.name!r}: expected {path}. Point FSMC_MODEL_DIR or --model-dir "
                f"at the folder holding {entry.file}{how}."
            )
