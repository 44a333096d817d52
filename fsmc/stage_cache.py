"""Reuse a pipeline stage's finished outputs across runs: a content-addressed stage cache.

A flow run writes into its own run folder, so a rerun after a crash (or the
next cell of a benchmark sharing the same few-shot set and teacher) would
recompute every stage. Each stage here declares what it reads (params
sections, files of earlier stages) and writes; the cache key is the sha256 of
the stage name, those params, the bytes of those files, the code the stage runs (its
module's import closure, :func:`fsmc.stage_io.stage_code`) and the library versions. On a hit the stored files are
copied into the run folder and the stored return value is given back.

Why not Prefect's task cache: it stores a task's return value, while a stage's
product is files in a run folder that changes every run. DVC is the other
cache (``dvc repro`` on ``data/``); this one serves flow runs.

Writes are crash- and concurrency-safe: an entry is assembled in a temporary
folder and renamed into place in one step, so a killed run leaves no entry a
later run could half-read, and two runs storing the same entry keep one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fsmc.atomic import atomic_write, sha256_file
from fsmc.cache import cache_dir
from fsmc.code_closure import closure_digest
from fsmc.config import Params
from fsmc.runtime import pick_device
from fsmc.stage_io import STAGE_IO, stage_modules
from fsmc.workspace import Workspace

_RESULT = "result.json"
# How long the stage took when it was computed: a search that resumes from the cache budgets its rounds by it.
_SECONDS = "seconds.json"


def code_fingerprint(stage: str) -> str:
    """sha256 over the code ``stage`` runs (:func:`fsmc.stage_io.stage_code`) and the numeric libraries' versions."""
    import numpy
    import sklearn
    import torch

    digest = hashlib.sha256(f"torch={torch.__version__} numpy={numpy.__version__} sklearn={sklearn.__version__}".encode())
    digest.update(closure_digest(*stage_modules(stage)).encode())
    return digest.hexdigest()


def stage_key(stage: str, params: Params, ws: Workspace) -> str:
    """The cache key of ``stage`` in ``ws``: params sections, input file bytes, code, device."""
    io = STAGE_IO[stage]
    recipe = {
        "stage": stage,
        "params": {section: dataclasses.asdict(getattr(params, section)) for section in io.sections},
        "inputs": {name: sha256_file(getattr(ws, name)) for name in io.inputs},
        "code": code_fingerprint(stage),
        # CUDA kernels round differently: a GPU result is not the CPU one.
        "device": pick_device().type,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()


def run_stage(stage: str, run: Callable[[Params, Workspace], dict], params: Params, ws: Workspace, reuse: bool = True) -> tuple[dict, bool]:
    """Run ``stage`` into ``ws``, or restore its outputs from the stage cache.

    Args:
        stage: a key of :data:`fsmc.stage_io.STAGE_IO` (but ``record_inputs``, which hashes raw inputs every run).
        run: the stage's pure worker.
        params: validated params.
        ws: the run folder.
        reuse: look the stage up in the cache first (``False`` recomputes; the result is still stored).

    Returns:
        (the stage's return value, whether it came from the cache).
    """
    io = STAGE_IO[stage]
    entry = _entry(stage, params, ws)
    if reuse and (entry / _RESULT).is_file():
        for name in io.outputs:
            atomic_write(getattr(ws, name), lambda tmp, source=entry / name: shutil.copyfile(source, tmp))
        return json.loads((entry / _RESULT).read_text(encoding="utf-8")), True
    started = time.perf_counter()
    result = run(params, ws)
    _store(entry, {name: getattr(ws, name) for name in io.outputs}, result, time.perf_counter() - started)
    return result, False


def _entry(stage: str, params: Params, ws: Workspace) -> Path:
    """The cache folder of ``stage`` for ``ws``'s inputs (present once the stage was computed with them)."""
    return cache_dir() / "stages" / stage / stage_key(stage, params, ws)


def recorded_seconds(stage: str, params: Params, ws: Workspace) -> float | None:
    """How many seconds ``stage`` took when its cache entry for ``ws`` was computed (None: no entry, or one stored
    before entries recorded it). A restored stage takes milliseconds; this is what computing it again would cost."""
    path = _entry(stage, params, ws) / _SECONDS
    return json.loads(path.read_text(encoding="utf-8"))["seconds"] if path.is_file() else None


def _store(entry: Path, outputs: dict[str, Path], result: dict, seconds: float) -> None:
    """Copy ``outputs`` and ``result`` into a temporary folder and rename it to ``entry`` in one step."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name[:12]}.", suffix=".tmp", dir=entry.parent))
    try:
        for name, output in outputs.items():
            shutil.copyfile(output, staging / name)
        (staging / _SECONDS).write_text(json.dumps({"seconds": round(seconds, 3)}), encoding="utf-8")
        # The result file goes last: an entry is complete exactly when it exists (see run_stage).
        (staging / _RESULT).write_text(json.dumps(result, sort_keys=True), encoding="utf-8")
        try:
            os.rename(staging, entry)
        except OSError:  # another run stored the same entry first: theirs is as good as ours
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
