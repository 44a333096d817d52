"""Pipeline stages: one module per stage, each with a pure ``run(params, workspace)``.

The same ``run`` is wrapped by a Prefect task (``tasks/``) and called by its DVC
stage (``python -m fsmc.stages NAME``), so there is one implementation.

A stage module is imported only when its ``run`` is asked for: importing one stage must not
run the others' code, because each stage's code dependencies are its own import closure
(:mod:`fsmc.code_closure`), and this package's ``__init__`` belongs to every one of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from fsmc.stage_io import STAGE_IO


class StageRunners(Mapping[str, Callable[..., dict]]):
    """``STAGES[name]`` is ``fsmc.stages.<name>.run``, imported on first use; the names are :data:`STAGE_IO`'s."""

    def __getitem__(self, name: str) -> Callable[..., dict]:
        if name not in STAGE_IO:
            raise KeyError(name)
        run: Any = importlib.import_module(f"fsmc.stages.{name}").run
        return run

    def __iter__(self) -> Iterator[str]:
        return iter(STAGE_IO)

    def __len__(self) -> int:
        return len(STAGE_IO)


STAGES = StageRunners()

# The order a run goes through its stages after ``record_inputs`` (the teacher comes before OOD
# curation: the optional near-ID filter asks it). Every one of these goes through the stage cache.
CACHED_PIPELINE = ("sample_few_shot", "teacher", "curate_ood", "validate", "compress", "recover", "evaluate")
