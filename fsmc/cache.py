"""A content-addressed file cache shared by every run, flow or DVC stage.

Entries are keyed by the sha256 of everything that determines them (params and
the source code that computes them), so a stale entry is never reused: change
the recipe or the code and the key changes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fsmc.atomic import atomic_write
from fsmc.code_closure import closure_digest


def cache_dir() -> Path:
    """``$FSMC_CACHE_DIR``, else ``$XDG_CACHE_HOME/fsmc``, else ``~/.cache/fsmc``."""
    if explicit := os.environ.get("FSMC_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fsmc"


def cache_key(inputs: Any, *code_of: str) -> str:
    """sha256 over JSON ``inputs`` and the code the modules ``code_of`` run (their import closure in fsmc/)."""
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode())
    digest.update(closure_digest(*code_of).encode())
    return digest.hexdigest()


def cached_file(kind: str, key: str, produce: Callable[[Path], None]) -> tuple[Path, bool]:
    """Path of the cache entry ``kind/key``, calling ``produce(tmp_path)`` on a miss.

    Returns:
        (path, hit) where ``hit`` says whether the entry already existed.
    """
    path = cache_dir() / kind / key
    if path.is_file():
        return path, True
    atomic_write(path, produce)
    return path, False
