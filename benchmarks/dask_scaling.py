"""The smoke benchmark on a Dask LocalCluster of 2 workers vs 1 worker, side by side in one run (issue 6).

Each run starts from an empty stage cache (its own FSMC_CACHE_DIR and project folder), so
both do the whole grid: shared stages, 8 cells, latency, report. Prints both wall times
and the ratio 2 workers / 1 worker (target on 2 cores: <= 0.6).

Usage: ``python benchmarks/dask_scaling.py [--preset smoke] [--rounds 1]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

REPO = Path(__file__).resolve().parents[1]


def _benchmark(preset: str, workers: int) -> tuple[float, dict[str, float]]:
    root = Path(tempfile.mkdtemp(prefix=f"fsmc-dask-{workers}-"))
    try:
        shutil.copy(REPO / "params.yaml", root / "params.yaml")
        env = {**os.environ, "FSMC_CACHE_DIR": str(root / "cache"), "PREFECT_HOME": str(root / "prefect"), "FSMC_PROGRESS": "off"}
        env.pop("MLFLOW_TRACKING_URI", None)
        start = time.perf_counter()
        done = subprocess.run([str(Path(sys.executable).with_name("fsmc")), "benchmark", "--preset", preset, "--workers", str(workers), "--json"],
                              cwd=root, env=env, check=True, capture_output=True, text=True)
        return time.perf_counter() - start, json.loads(done.stdout.strip().splitlines()[-1])["phase_seconds"]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--rounds", type=int, default=1, help="alternate 1 and 2 workers this many times, keep the best of each")
    args = parser.parse_args()
    best: dict[int, tuple[float, dict[str, float]]] = {}
    for _ in range(args.rounds):
        for workers in (1, 2):
            wall, phases = _benchmark(args.preset, workers)
            if workers not in best or wall < best[workers][0]:
                best[workers] = (wall, phases)
    (one, one_phases), (two, two_phases) = best[1], best[2]
    console = Console()
    console.print(
        f"fsmc benchmark --preset {args.preset} from an empty cache, whole command (process, Prefect server, cluster start, "
        f"shared stages, cells, latency, report, MLflow): 1 worker {one:.1f} s, 2 workers {two:.1f} s, ratio 2/1 = {two / one:.2f}"
    )
    for phase in one_phases:
        ratio = two_phases[phase] / max(one_phases[phase], 1e-9)
        console.print(f"  {phase}: 1 worker {one_phases[phase]:.1f} s, 2 workers {two_phases[phase]:.1f} s, ratio {ratio:.2f}")
    console.print("(target on 2 cores: <= 0.6 for the grid)")


if __name__ == "__main__":
    main()
