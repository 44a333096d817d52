"""sha256 of every data and weight file fsmc knows, verified on every load.

A file under a known relative path whose hash differs is refused: a silent
change of the inputs would change every result downstream.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from fsmc.atomic import sha256_file
from fsmc.errors import FsmcError

KNOWN_DATA = {
    "cifar10/train.npz": "1e3b9016ce61eb9a66c0549f11f18ca54d133a6e33883f237aeeec15683b4378",
    "cifar10/test.npz": "70e4ac07061418e21d1d1b862caaf926b5ee04c948a8753583ea90475436c42f",
    "cifar10/classes.json": "d09fc639dcaca0a6252dbb930e30776e331b59d0ad68b9a0a21acaec2b748cad",
    "tinyimagenet/val.npz": "d71b9df06f0c9d68b783707f3a6774bbc5468acdc368e38a961582ede65224da",
    "tinyimagenet/train_subset.npz": "577fe4e26b735ae8a003d6349cefa292a15cd7ccc8034cf7bb0a042f5c7affd5",
    "tinyimagenet/classes.json": "1e55d91e2742c3c6f8b14151bad9feb65016649e2c31be45b76a632f44227814",
    "tinyimagenet/cifar10_overlap.json": "65f17333260c52e66d0fa2d0ce91eebfcd4065450e75c713bb9e9f28dcb8be40",
}


@lru_cache(maxsize=64)
def _hash(path: str, size: int, mtime_ns: int) -> str:
    # Keyed on size and mtime so a file rewritten in place is hashed again.
    return sha256_file(Path(path))


def file_sha256(path: Path) -> str:
    """sha256 of ``path``, memoised per (path, size, mtime) within the process."""
    stat = os.stat(path)
    return _hash(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def verify(path: Path, expected: str | None, what: str) -> None:
    """Refuse ``path`` when ``expected`` is given and its sha256 differs."""
    if expected is None:
        return
    actual = file_sha256(path)
    if actual != expected:
        raise FsmcError(
            f"Checksum mismatch for {what} at {path}: sha256 is {actual}, expected {expected}. "
            "The file is corrupted or not the published version; replace it with the original."
        )
