"""Flow ``benchmark``: a preset's grid of compression experiments, fanned out on Dask, as one table and report.

Shared work first (few-shot sets, OOD pools, teachers, compressed models and the
teacher's outputs: once per distinct setting, into the stage cache), then one
Prefect task run per cell on a ``DaskTaskRunner`` (a ``LocalCluster`` sized to the
machine, or an existing cluster), each logged as a nested MLflow run under the
benchmark's parent run. Rerunning a preset finds finished cells in the stage
cache; a killed benchmark resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.futures import as_completed
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fsmc.atomic import write_json
from fsmc.benchmark.cell import architecture_latency, prepare_shared, prepare_teacher, run_cell
from fsmc.benchmark.grid import Cell, expand
from fsmc.benchmark.report import write_report
from fsmc.benchmark.results import summarize, teachers, with_gaps, write_results
from fsmc.config import METHOD_DECLARATIONS, Params
from fsmc.config.presets import get_preset
from fsmc.workspace import Workspace
from tasks.benchmark_tracking import log_benchmark, start_benchmark_run


def keep_glibc_malloc_defaults() -> None:
    """Local Dask workers start without distributed's ``MALLOC_TRIM_THRESHOLD_=65536`` (its nanny's default environ).

    Setting any malloc threshold turns off glibc's adaptive mmap threshold, so every tensor above 128 KiB is mapped
    and unmapped afresh: each recovery step then faults its activations in page by page. Measured on block-drop
    60 %'s recover stage, 100 steps on 1 thread (benchmarks/LOG.md, sixth session): 33 s without it, 48 s with it
    (sys 1.7 s against 15 s, 0.34 M against 8.5 M page faults). A user's own cluster (``--dask-address``) keeps its config.
    """
    import dask

    dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})


def dask_task_runner(address: str | None, workers: int):
    """A ``DaskTaskRunner`` on ``address``, or on a ``LocalCluster`` of ``workers`` single-threaded processes."""
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    keep_glibc_malloc_defaults()
    # One thread per worker process: a cell is torch work that holds the GIL; processes run in parallel.
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True, "host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
    )



@task(name="prepare-shared")
def prepare_task(params: Params, folder: str, with_features: list[bool], torch_threads: int) -> None:
    """Shared stages of one setting (few-shot set, teacher, OOD pool, compressed model, teacher outputs)."""
    _configure_worker(torch_threads)
    prepare_shared(params, Workspace(Path(folder)), with_features)


@task(name="shared-teacher")
def teacher_task(params: Params, folder: str, torch_threads: int) -> None:
    """The teacher of one setting (every setting with this teacher then finds it in the stage cache)."""
    _configure_worker(torch_threads)
    prepare_teacher(params, Workspace(Path(folder)))


@task(name="benchmark-cell")
def cell_task(params: Params, folder: str, reuse: bool, torch_threads: int) -> dict:
    """One cell: the pipeline in its own folder, finished stages from the stage cache."""
    _configure_worker(torch_threads)
    return run_cell(params, Workspace(Path(folder)), reuse)


def _configure_worker(count: int) -> None:
    import logging

    import torch

    # Each Dask worker is one process: torch threads x workers = cores, so workers don't oversubscribe.
    torch.set_num_threads(count)
    # Worker processes log at INFO by default; the stages' libraries are as quiet there as in `fsmc run`.
    for name in ("great_expectations", "distributed"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _shared_key(params: Params) -> str:
    """Cells with equal keys share every stage up to ``compress``."""
    shared = {k: v for k, v in params.to_dict().items() if k not in ("recover", "evaluate", "gate", "serve", "tracking")}
    return json.dumps(shared, sort_keys=True)


def _teacher_key(params: Params) -> str:
    return json.dumps([dataclasses.asdict(params.data), dataclasses.asdict(params.teacher)], sort_keys=True)


def _wait(futures: list) -> None:
    for future in futures:
        future.result()


def _architecture_key(params: Params) -> str:
    """Cells with equal keys have the same teacher and the same student architecture (same latency)."""
    return json.dumps([params.data.teacher, dataclasses.asdict(params.compress)], sort_keys=True)


def _row(cell: Cell, result: dict) -> dict:
    p = cell.params
    return {
        "cell_id": cell.cell_id,
        "labels": cell.labels,
        "overrides": list(cell.overrides),
        "teacher": p.data.teacher,
        "scheme": p.compress.scheme,
        "method": p.recover.method,
        "oe": p.recover.oe,
        "k_max": p.sample_few_shot.k_max,
        "imbalance_ratio": p.sample_few_shot.imbalance_ratio,
        **result,
    }


# Served deployments run this decorator's runner: a local cluster with one worker per core.
@flow(name="benchmark", task_runner=dask_task_runner(None, os.cpu_count() or 1))
def benchmark_flow(
    preset: str,
    only: list[str] | None = None,
    overrides: list[str] | None = None,
    params_file: str = "params.yaml",
    out_dir: str = "",
    reuse: bool = True,
    torch_threads: int = 1,
) -> dict[str, Any]:
    """Run the grid of ``preset`` and write results.csv, results.json and report.html.

    Args:
        preset: a name from :data:`fsmc.config.presets.PRESETS`.
        only: ``AXIS=VALUE`` filters (a slice of the grid).
        overrides: ``--set`` overrides applied to every cell.
        params_file: the params.yaml the presets' overrides apply to ('' for the built-in defaults).
        out_dir: where the cells' folders and the results go (default ``reports/<preset>``).
        reuse: take finished stages from the stage cache (False recomputes every cell).
        torch_threads: torch threads per task (cores / Dask workers).

    Returns:
        Paths of the results and report, the summary rows and the MLflow parent run id.
    """
    started = time.perf_counter()
    spec = get_preset(preset)
    grid = expand(spec, Path(params_file) if params_file else None, only or [], overrides or [])
    out = Path(out_dir or Path("reports") / preset)
    cells_dir = out / "cells"

    phases: dict[str, float] = {}
    cores = os.cpu_count() or 1
    mark = time.perf_counter()
    if reuse:
        shared: dict[str, tuple[Params, list[bool]]] = {}
        for cell in grid.cells:
            params, features = shared.setdefault(_shared_key(cell.params), (cell.params, []))
            features.append(METHOD_DECLARATIONS[cell.params.recover.method].needs_features)
        # Teachers first, one per distinct teacher: settings differing only in seeds share it.
        teachers_first = {_teacher_key(params): params for params, _ in shared.values()}
        # A wave of fewer tasks than workers leaves cores idle: give each task their threads.
        threads = lambda tasks: max(torch_threads, cores // max(1, tasks))  # noqa: E731
        _wait([
            teacher_task.submit(params, str(out / "shared" / f"teacher-{i:02d}"), threads(len(teachers_first)))
            for i, params in enumerate(teachers_first.values())
        ])
        _wait([
            prepare_task.submit(params, str(out / "shared" / f"{i:03d}"), features, threads(len(shared)))
            for i, (params, features) in enumerate(shared.values())
        ])
    phases["shared"] = time.perf_counter() - mark

    by_id = {cell.cell_id: cell for cell in grid.cells}
    futures = {cell_task.submit(cell.params, str(cells_dir / cell.cell_id), reuse, torch_threads): cell.cell_id for cell in grid.cells}
    rows = []
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=False, disable=os.environ.get("FSMC_PROGRESS") == "off") as progress:
        bar = progress.add_task(f"benchmark {preset}", total=len(futures))
        for future in as_completed(list(futures)):
            cell = by_id[futures[future]]
            rows.append(_row(cell, future.result()))
            progress.advance(bar)
    order = {cell_id: i for i, cell_id in enumerate(by_id)}
    rows.sort(key=lambda r: order[r["cell_id"]])  # grid order, whatever order cells finished in
    phases["cells"] = time.perf_counter() - mark - phases["shared"]

    # Latency is measured after the grid, one cell at a time: parallel cells would skew each other's timings.
    latencies: dict[str, dict] = {}
    for row in rows:
        cell = by_id[row["cell_id"]]
        key = _architecture_key(cell.params)
        if key not in latencies:
            latencies[key] = architecture_latency(cell.params, Workspace(cells_dir / cell.cell_id))
        row.update(latencies[key])
    rows = [with_gaps(row) for row in rows]
    phases["latency"] = time.perf_counter() - mark - phases["shared"] - phases["cells"]

    axes = [axis for axis, _ in spec.axes]
    summary = summarize(rows, axes)
    teacher_rows = teachers(rows)
    paths = write_results(out, preset, rows, summary, teacher_rows, grid.skipped)
    preset_info = {"name": spec.name, "summary": spec.summary, "axes": axes, "headline": dict(spec.headline)}
    report = write_report(out / "report.html", preset_info, rows, summary, teacher_rows, len(grid.skipped))
    wall_seconds = time.perf_counter() - started
    record = {"preset": preset, "only": only or [], "overrides": overrides or [], "cells": len(rows), "wall_seconds": round(wall_seconds, 3)}
    write_json(out / "run.json", record)

    parent = start_benchmark_run(preset, record)
    log_benchmark(parent, rows, summary, [paths["csv"], paths["json"], report], grid.preset.name)
    return {
        "preset": preset,
        "cells": len(rows),
        "reused_cells": sum(r["all_reused"] for r in rows),
        "skipped": [{"labels": labels, "reason": reason} for labels, reason in grid.skipped],
        "summary": summary,
        "teachers": teacher_rows,
        "results_csv": str(paths["csv"]),
        "results_json": str(paths["json"]),
        "report": str(report),
        "mlflow_run_id": parent,
        "wall_seconds": round(wall_seconds, 3),
        "phase_seconds": {k: round(v, 3) for k, v in phases.items()},
    }
