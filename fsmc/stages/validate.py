"""Stage ``validate``: Great Expectations suites on both manifests and the images they name."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from fsmc.atomic import read_json, write_json
from fsmc.config import Params
from fsmc.data.images import ImageSet
from fsmc.data.sampling import profile_counts
from fsmc.data.sources import load_ood_pool
from fsmc.data.validation import (
    counts_suite,
    few_shot_manifest_suite,
    image_arrays_suite,
    ood_manifest_suite,
    overlap_column,
    raise_on_failure,
    run_suite,
)
from fsmc.stages.reading import few_shot_set, ood_set
from fsmc.workspace import Workspace


def _image_stats(images: ImageSet) -> pd.DataFrame:
    array = images.images
    n = len(array)
    shape = array.shape[1:] if array.ndim == 4 else (0, 0, 0)
    flat = array.reshape(n, -1) if n else np.zeros((0, 1))
    return pd.DataFrame(
        {
            "height": [shape[0]] * n,
            "width": [shape[1]] * n,
            "channels": [shape[2]] * n,
            "dtype": [str(array.dtype)] * n,
            "min": flat.min(axis=1) if n else [],
            "max": flat.max(axis=1) if n else [],
        }
    )


def run(params: Params, ws: Workspace) -> dict:
    """Run every suite, write ``validate/report.json``, raise ``ValidationFailed`` if any fails."""
    dataset, few_frame, few_images = few_shot_set(params, ws)
    ood_frame, ood_images = ood_set(params, ws)
    pool = load_ood_pool(params.data)
    summary = read_json(ws.few_shot_summary)
    test_hashes, train_hashes = set(dataset.test.hashes()), set(dataset.train.hashes())

    few_frame = few_frame.assign(
        actual_sha256=few_images.hashes(),
        actual_label=few_images.labels,
        also_in_test_split=overlap_column(few_frame["sha256"], test_hashes),
        also_in_ood_manifest=overlap_column(few_frame["sha256"], set(ood_frame["sha256"])),
    )
    ood_frame = ood_frame.assign(
        actual_sha256=ood_images.hashes(), also_in_id_data=overlap_column(ood_frame["sha256"], train_hashes | test_hashes)
    )
    expected = profile_counts(
        dataset.num_classes,
        params.sample_few_shot.k_max,
        params.sample_few_shot.imbalance_ratio,
        params.sample_few_shot.profile,
    )
    observed = few_frame["label"].value_counts()
    counts = pd.DataFrame(
        {
            "label": range(dataset.num_classes),
            "observed": [int(observed.get(c, 0)) for c in range(dataset.num_classes)],
            "expected": [expected[rank] for rank in summary["ranks"]],
        }
    )
    height, width, channels = dataset.image_shape
    pixel_max = dataset.train.pixel_max
    results = [
        run_suite(
            "few_shot_manifest",
            few_frame,
            few_shot_manifest_suite(dataset.num_classes),
        ),
        run_suite("few_shot_counts", counts, counts_suite()),
        run_suite("ood_manifest", ood_frame, ood_manifest_suite(set(pool.excluded_labels))),
        run_suite("few_shot_images", _image_stats(few_images), image_arrays_suite(height, width, channels, pixel_max)),
        run_suite("ood_images", _image_stats(ood_images), image_arrays_suite(height, width, channels, pixel_max)),
    ]
    report = {
        "success": all(r.success for r in results),
        "suites": [dataclasses.asdict(r) for r in results],
    }
    write_json(ws.validation_report, report)
    raise_on_failure(results)
    return report
