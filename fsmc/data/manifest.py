"""Manifests: the CSV record of exactly which images a run used.

Few-shot: ``split,index,label,sha256``. OOD: ``source,index,pool_label,sha256``.
Written by hand with fixed formatting so a rerun is byte-identical.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fsmc.atomic import write_text
from fsmc.errors import FsmcError

FEW_SHOT_COLUMNS = ("split", "index", "label", "sha256")
OOD_COLUMNS = ("source", "index", "pool_label", "sha256")


def _csv(columns: tuple[str, ...], rows: list[tuple]) -> str:
    lines = [",".join(columns)] + [",".join(str(v) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


def write_few_shot_manifest(path: Path, split: str, indices: np.ndarray, labels: np.ndarray, hashes: list[str]) -> None:
    """Write the few-shot manifest (one row per chosen training image)."""
    rows = [(split, int(i), int(labels[i]), hashes[i]) for i in indices]
    write_text(path, _csv(FEW_SHOT_COLUMNS, rows))


def write_ood_manifest(path: Path, source: str, indices: np.ndarray, labels: np.ndarray, hashes: list[str]) -> None:
    """Write the OOD manifest (``pool_label`` is -1 when the pool has no labels)."""
    rows = [(source, int(i), int(labels[i]), hashes[i]) for i in indices]
    write_text(path, _csv(OOD_COLUMNS, rows))


def read_manifest(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read a manifest, checking it exists and has the expected header."""
    path = Path(path)
    if not path.is_file():
        raise FsmcError(f"Manifest {str(path)!r} does not exist; run the stage that writes it first.")
    frame = pd.read_csv(path, dtype={"sha256": str, "split": str, "source": str})
    if tuple(frame.columns) != columns:
        raise FsmcError(f"Manifest {path} has columns {list(frame.columns)}; expected {list(columns)}.")
    return frame
