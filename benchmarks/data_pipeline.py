"""Load CIFAR-10, sample an imbalanced manifest, curate an OOD pool of 5,000: wall time per step.

Target (issue 3): seconds, not minutes.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from fsmc.config import load_params
from fsmc.data.sources import forget_read_data, load_dataset, load_ood_pool
from fsmc.stages import curate_ood, sample_few_shot
from fsmc.workspace import Workspace


def main() -> None:
    params = load_params(None, ["dataset=cifar10", "teacher=resnet56", "k_max=50", "budget=5000"])
    timings = {}
    start = time.perf_counter()
    load_dataset(params.data)
    load_ood_pool(params.data)
    timings["load CIFAR-10 + Tiny-ImageNet (verify sha256, decompress)"] = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        ws = Workspace(Path(folder))
        start = time.perf_counter()
        sample_few_shot.run(params, ws)
        timings["sample manifest (hash 50k train images once)"] = time.perf_counter() - start
        start = time.perf_counter()
        summary = curate_ood.run(params, ws)
        timings[f"curate {summary['size']} OOD images (hash pool + ID test)"] = time.perf_counter() - start
    total = sum(timings.values())
    for name, seconds in timings.items():
        print(f"{seconds:8.2f} s  {name}")
    print(f"{total:8.2f} s  total (target: seconds, not minutes)")
    forget_read_data()


if __name__ == "__main__":
    main()
