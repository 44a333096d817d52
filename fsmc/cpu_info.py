"""The CPU features that decide the fast paths (bf16 autocast, int8 kernels), printed beside every timing.

No torch here: the command-line start-up benchmark prints it too.
"""

from __future__ import annotations

import platform
from pathlib import Path

# AVX2 is the floor of these machines; VNNI and AMX-INT8 make int8 pay, AVX-512-BF16 and AMX-BF16 make bf16 native.
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def cpu_flags() -> str:
    """Which of :data:`FLAGS` this CPU has, space-separated (the processor name where /proc/cpuinfo is absent)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    return " ".join(flag for flag in FLAGS if f" {flag}" in text) or "none of " + "/".join(FLAGS)


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo``), or what the platform says where that is absent."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
