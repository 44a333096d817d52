"""Peak resident memory of a CIFAR-10 ``fsmc run`` (ResNet-56 teacher, the issue's setting at a short budget).

Target (issue 3): under 4 GiB. Runs the CLI in a child process and reads the
children's peak RSS from the kernel (``getrusage``).
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(REPO / "params.yaml", Path(folder) / "params.yaml")
        command = [
            str(Path(sys.executable).with_name("fsmc")), "run", "--json",
            "--set", "dataset=cifar10", "--set", "teacher=resnet56-jpeg", "--set", "k_max=50",
            "--set", "imbalance_ratio=10", "--set", "recover.steps=100",
        ]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, cwd=folder, check=True, capture_output=True)
        wall = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    print(f"CIFAR-10 fsmc run (ResNet-56, K_max 50, rho 10, 100 steps, full test split): {wall:.1f} s wall")
    print(f"peak RSS {peak_gib:.2f} GiB (target < 4 GiB): ratio to target {peak_gib / 4:.2f}")


if __name__ == "__main__":
    main()
