"""One interface to every data source: ``load_dataset`` and ``load_ood_pool`` by name."""

from __future__ import annotations

from fsmc.config import DataParams
from fsmc.data.embedded import load_digits_dataset, load_photo_patches
from fsmc.data.images import ImageSet, LabelledDataset
from fsmc.errors import FsmcError


def load_dataset(data: DataParams) -> LabelledDataset:
    """The in-distribution dataset named by ``data.dataset``."""
    if data.dataset == "digits":
        return load_digits_dataset(data.test_fraction, data.split_seed)
    raise FsmcError(f"data.dataset={data.dataset!r} is unknown; valid datasets: digits.")


def load_ood_pool(data: DataParams) -> ImageSet:
    """The raw OOD pool that goes with ``data.dataset`` (before curation)."""
    if data.dataset == "digits":
        return load_photo_patches()
    raise FsmcError(f"No OOD pool is defined for data.dataset={data.dataset!r}; valid datasets: digits.")
