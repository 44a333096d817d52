"""Check every input a run needs before any work starts: data files, OOD pool, teacher weights.

Bad input must fail fast and write nothing, so the CLI calls this before the
flow. Loading is not wasted: the datasets are cached per process, and the flow
runs in the same process.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from fsmc.config import Params
from fsmc.data.checksums import verify
from fsmc.data.npz_source import NPZ_DATASETS, read_classes
from fsmc.errors import FsmcError
from fsmc.models.pretrained import PRETRAINED, model_dir

if TYPE_CHECKING:  # its module imports torch, which the file checks must not wait for
    from fsmc.data.images import LabelledDataset


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
    check_counts(params, dataset)
    if params.data.user_teacher:  # weights, classes, channels and output shape, before any work
        load_user_teacher(params.data, dataset.classes, dataset.image_shape, params.teacher.trust_pickle)


def check_counts(params: Params, dataset: LabelledDataset) -> None:
    """Raise :class:`FsmcError` when a parameter that counts classes, shots or test images does not fit ``dataset``.

    Why here: each was accepted silently before (11 minority classes of 10) or failed only once the flow had
    started. (gate.latency_batch may exceed the test split: the timed batch repeats test images.)
    """
    from fsmc.data.sampling import sample_few_shot

    classes, test_images = dataset.num_classes, len(dataset.test)
    minority = params.evaluate.minority_classes
    if minority > classes:
        raise FsmcError(
            f"evaluate.minority_classes={minority} asks for more minority classes than {dataset.name} has ({classes}); "
            f"give 1..{classes}."
        )
    s = params.sample_few_shot
    # The draw itself (a permutation and a few choices: milliseconds) names a class too small for its shots.
    sample_few_shot(dataset.train.labels, classes, s.k_max, s.imbalance_ratio, s.profile, s.seed)
    if params.evaluate.max_test_images > test_images:
        raise FsmcError(
            f"evaluate.max_test_images={params.evaluate.max_test_images} exceeds the {test_images} test images of "
            f"{dataset.name}; give 0 (the whole test split) or 1..{test_images}."
        )


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
