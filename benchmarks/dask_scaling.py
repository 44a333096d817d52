"""The smoke benchmark on a Dask LocalCluster of 2 workers vs 1 worker, side by side in one run (issue 6).

Each run starts from an empty stage cache (its own FSMC_CACHE_DIR and project folder), so
both do the whole grid: shared stages, 8 cells, latency, report. Prints both wall times
and the ratio 2 workers / 1 worker (target on 2 cores: <= 0.6).

Usage: ``python benchmarks/dask_scaling.py [--preset smoke] [--rounds 1]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

REPO = Path(__file__).resolve().parents[1]


def _benchmark(preset: str, workers: int) -> float:
    root = Path(tempfile.mkdtemp(prefix=f"fsmc-dask-{workers}-"))
    try:
        shutil.copy(REPO / "params.yaml", root / "params.yaml")
        env = {**os.environ, "FSMC_CACHE_DIR": str(root / "cache"), "PREFECT_HOME": str(root / "prefect"), "FSMC_PROGRESS": "off"}
        env.pop("MLFLOW_TRACKING_URI", None)
        start = time.perf_counter()
        subprocess.run([str(Path(sys.executable).with_name("fsmc")), "benchmark", "--preset", preset, "--workers", str(workers)],
                       cwd=root, env=env, check=True, capture_output=True, text=True)
        return time.perf_counter() - start
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--rounds", type=int, default=1, help="alternate 1 and 2 workers this many times, keep the best of each")
    args = parser.parse_args()
    best = {1: float("inf"), 2: float("inf")}
    for _ in range(args.rounds):
        for workers in (1, 2):
            best[workers] = min(best[workers], _benchmark(args.preset, workers))
    Console().print(
        f"fsmc benchmark --preset {args.preset} from an empty cache (wall, incl. process and cluster start): "
        f"1 worker {best[1]:.1f} s, 2 workers {best[2]:.1f} s, ratio 2/1 = {best[2] / best[1]:.2f} (target <= 0.6 on 2 cores)"
    )


if __name__ == "__main__":
    main()
