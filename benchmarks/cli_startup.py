"""How long `fsmc` takes to answer help, listings and refused input, beside `python -c pass` (issue 29, goal 3).

Every command runs as a user types it, in a fresh empty folder, ``--repeats`` times; the table gives each
median wall time and its ratio to the bare interpreter's start, and checks that each refusal still exits 2.
Run it on an otherwise idle machine with the venv active:

    python benchmarks/cli_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fsmc.cpu_info import cpu_flags

FSMC = str(Path(sys.executable).with_name("fsmc"))
# (label, argv, expected exit code): help, listings, and one refusal of each kind fsmc checks before any work.
COMMANDS = [
    ("python -c pass", [sys.executable, "-c", "pass"], 0),
    ("fsmc --help", [FSMC, "--help"], 0),
    ("fsmc run --help", [FSMC, "run", "--help"], 0),
    ("fsmc methods", [FSMC, "methods"], 0),
    ("fsmc params", [FSMC, "params"], 0),
    ("run --set sample_few_shot.k_max=abc", [FSMC, "run", "--set", "sample_few_shot.k_max=abc"], 2),
    ("run --set method=sgd", [FSMC, "run", "--set", "method=sgd"], 2),
    ("run --set not_a_key=3", [FSMC, "run", "--set", "not_a_key=3"], 2),
    ("run --params missing.yaml", [FSMC, "run", "--params", "missing.yaml"], 2),
    ("run --params syntax.yaml", [FSMC, "run", "--params", "{root}/syntax.yaml"], 2),
    ("run --workspace FILE", [FSMC, "run", "--workspace", "{root}/notes.txt"], 2),
    ("run --data-dir /nonexistent", [FSMC, "run", "--data-dir", "/nonexistent"], 2),
    ("run, CIFAR-10 data missing", [FSMC, "run", "--set", "dataset=cifar10", "--set", "teacher=resnet20"], 2),
    ("benchmark --preset papers", [FSMC, "benchmark", "--preset", "papers"], 2),
    ("export missing-folder", [FSMC, "export", "missing-folder"], 2),
    ("ui --port 70000", [FSMC, "ui", "--port", "70000"], 2),
]


def time_command(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds of one run of ``argv`` in ``cwd``, and its exit code."""
    started = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    return time.perf_counter() - started, result.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "syntax.yaml").write_text("data: [unclosed\n")
        (root / "notes.txt").write_text("just text\n")
        env = {**os.environ, "FSMC_DATA_DIR": str(root / "no-data"), "FSMC_CACHE_DIR": str(root / "cache")}
        env.pop("MLFLOW_TRACKING_URI", None)
        table = Table(title=f"fsmc start-up, median of {args.repeats} (CPU: {cpu_flags()}, {os.cpu_count()} cores)")
        for column in ("command", "median s", "× python -c pass", "exit"):
            table.add_column(column, justify="left" if column == "command" else "right")
        baseline = None
        for label, argv, expected in COMMANDS:
            cwd = root / "cwd"
            cwd.mkdir(exist_ok=True)
            runs = [time_command([a.format(root=root) for a in argv], cwd, env) for _ in range(args.repeats)]
            median = statistics.median(seconds for seconds, _ in runs)
            codes = {code for _, code in runs}
            baseline = baseline or median
            exit_text = str(codes.pop()) if len(codes) == 1 else str(sorted(codes))
            if exit_text != str(expected):
                exit_text = f"[red]{exit_text} (expected {expected})[/]"
            table.add_row(label, f"{median:.2f}", f"{median / baseline:.1f}", exit_text)
        Console().print(table)


if __name__ == "__main__":
    main()
