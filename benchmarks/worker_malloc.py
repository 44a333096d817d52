"""What distributed's worker environment cost recovery: the recover stage with and without MALLOC_TRIM_THRESHOLD_.

distributed's nanny starts every Dask worker with ``MALLOC_TRIM_THRESHOLD_=65536``; any malloc threshold set turns
off glibc's adaptive mmap threshold, so each tensor above 128 KiB is mapped and unmapped afresh and every recovery
step faults its activations in again. fsmc's local workers start without it (``flows.benchmark.keep_glibc_malloc_defaults``).
This runs the product's recover stage (``fsmc.stages.STAGES["recover"]``) on a copy of a run folder, in a fresh
process per run, alternately without and with the variable, and prints wall, user and system seconds, page faults
and the ratio, with the CPU flags.

    python benchmarks/worker_malloc.py runs/<time>-<id> [--steps 100] [--threads 1] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fsmc.cpu_info import cpu_flags, cpu_model

DASK_NANNY_ENVIRON = {"MALLOC_TRIM_THRESHOLD_": "65536"}  # distributed's default pre-spawn environ (2026.8.0)

CHILD = """
import json, resource, sys, time
from pathlib import Path
import torch
from fsmc.config import load_params
from fsmc.stages import STAGES
from fsmc.workspace import Workspace

folder, steps, threads = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ws = Workspace(folder)
params = load_params(ws.run_params, [f"recover.steps={steps}", f"recover.threads={threads}"])
torch.set_num_threads(threads)
before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
STAGES["recover"](params, ws)
after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - started
print(json.dumps({"wall": wall, "user": after.ru_utime - before.ru_utime, "sys": after.ru_stime - before.ru_stime,
                  "faults": after.ru_minflt - before.ru_minflt}))
"""


def recover_once(run_folder: Path, steps: int, threads: int, extra_env: dict[str, str]) -> dict:
    """The recover stage on a throwaway copy of ``run_folder``, in a new process with ``extra_env``."""
    scratch = Path(tempfile.mkdtemp(prefix="fsmc-malloc-"))
    try:
        shutil.copytree(run_folder, scratch / "run")
        env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"} | extra_env
        out = subprocess.run([sys.executable, "-c", CHILD, str(scratch / "run"), str(steps), str(threads)],
                             env=env, check=True, capture_output=True, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_folder", type=Path)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    console = Console()
    console.print(f"{cpu_model()}, {os.cpu_count()} cores, flags: {cpu_flags()}")
    runs: dict[str, list[dict]] = {"fsmc's workers (glibc defaults)": [], "distributed's default (MALLOC_TRIM_THRESHOLD_=65536)": []}
    for _ in range(args.rounds):  # alternately, so a slow minute on a shared machine hits both
        for label, env in zip(runs, ({}, DASK_NANNY_ENVIRON), strict=True):
            runs[label].append(recover_once(args.run_folder, args.steps, args.threads, env))
    table = Table(title=f"recover stage, {args.steps} steps, {args.threads} thread(s): best of {args.rounds}")
    for column in ("worker environment", "wall s", "user s", "sys s", "page faults"):
        table.add_column(column, justify="right")
    best = {label: min(results, key=lambda r: r["wall"]) for label, results in runs.items()}
    for label, r in best.items():
        table.add_row(label, f"{r['wall']:.1f}", f"{r['user']:.1f}", f"{r['sys']:.1f}", f"{r['faults']:,}")
    console.print(table)
    fast, slow = best.values()
    console.print(f"distributed's default / fsmc's: x{slow['wall'] / fast['wall']:.2f} wall time")


if __name__ == "__main__":
    main()
