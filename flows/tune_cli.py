"""``fsmc tune``: compress to a target (a measured speed-up or a MACs share) within the gate's accuracy limits."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flows.benchmark_cli import MAX_WORKERS_PER_CORE, check_dask_address, share_prefect_api_with_workers
from flows.cli_common import check_output_path, fail, load_cli_params, use_directories
from fsmc.errors import FsmcError

# Keys a target replaces: the search chooses them, so a fixed value would be silently ignored.
_CHOSEN_BY_SEARCH = ("compress.ratio", "ratio", "compress.scheme", "scheme", "compress.macs_fraction", "macs_fraction")


def check_tune_request(overrides: list[str], speedup: float, macs: float) -> None:
    """Refuse a search with no target, or one also given a fixed recipe (``compress.ratio``, ``compress.scheme``)."""
    if not speedup and not macs:
        raise FsmcError(
            "fsmc tune needs a target: --set target.speedup=2.0 (a measured speed-up at target.batch) or "
            "--set target.macs=0.4 (the share of the teacher's MACs the student may keep)."
        )
    fixed = [o for o in overrides if o.partition("=")[0].strip() in _CHOSEN_BY_SEARCH]
    if fixed:
        raise FsmcError(
            f"{', '.join(fixed)} fixes what the search chooses: with a target, fsmc tune picks the scheme and the per-layer "
            "ratios itself. Drop the fixed value (or run `fsmc run` with it and no target)."
        )


def print_tune(result: dict[str, Any], console: Console | None = None) -> None:
    """The candidates as a table (front marked), then the chosen student and where it went."""
    console = console or Console()
    batch = result["batch"]
    table = Table(title=f"fsmc tune: candidates (speed-up at batch {batch}, shipped runtime; drops in points)")
    columns = ("candidate", "round", "MACs", "speed-up", *(() if batch == 1 else ("b1",)), "top-1", "Δtop-1", "Δworst", "pass")
    for column in columns:
        table.add_column(column, justify="left" if column in ("candidate", "round") else "right", no_wrap=True)
    front = set(result["pareto"]["top1"])
    for r in sorted(result["candidates"], key=lambda r: (-r["speedup"], r["round"])):
        name = f"{r['name']} ({r['round']})"
        b1 = () if batch == 1 else (f"x{r['speedup_b1']:.2f}",)
        table.add_row(("* " if name in front else "") + r["name"], r["round"], f"x{r['macs_ratio']:.2f}", f"x{r['speedup']:.2f}", *b1,
                      f"{100 * r['top1']:.2f}", f"{100 * r['top1_drop']:.2f}", f"{100 * r['worst_class_drop']:.2f}",
                      "yes" if r["passed"] else "no")
    console.print(table)
    for left in result["left_out"]:
        console.print(f"[yellow]left out[/] {left['name']}: {left['reason']}", highlight=False)
    chosen, model = result["chosen"], result["registered_model"]
    verb = "passed every limit" if result["passed"] else "is the closest; no candidate passed"
    console.print(f"[bold]{chosen['name']}[/] ({chosen['round']} recovery) {verb}: x{chosen['speedup']:.2f}, top-1 drop "
                  f"{100 * chosen['top1_drop']:.2f}, worst-class drop {100 * chosen['worst_class_drop']:.2f} points. "
                  f"Registered {model['name']} version {model['version']}"
                  + (f" with alias {result['alias']!r}." if result["alias"] else " without the alias."), highlight=False)
    if result["message"]:
        console.print(result["message"], highlight=False)
    console.print(f"* = on the Pareto front. Reproduce: fsmc run --params {result['params_file']}; plot {result['pareto_plot']}; "
                  f"{len(result['candidates'])} candidates in {result['wall_seconds']:.0f} s.", highlight=False)


def tune(
    set_: Annotated[list[str], typer.Option("--set", help="target.speedup=2.0 | target.macs=0.4, and any other section.key=value.")] = [],  # noqa: B006
    params_file: Annotated[Path, typer.Option("--params", help="Parameter file (defaults apply when absent).")] = Path("params.yaml"),
    out: Annotated[Path | None, typer.Option("--out", help="Folder for the candidates and results (default reports/tune/<time>).")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Dask worker processes of the local cluster (default: one per core).")] = 0,
    dask_address: Annotated[str | None, typer.Option("--dask-address", help="Use an existing Dask scheduler, tcp://HOST:PORT.")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Folder of <dataset>/<split>.npz files (default: $FSMC_DATA_DIR).")] = None,
    model_dir: Annotated[Path | None, typer.Option("--model-dir", help="Folder of pretrained weights (default: $FSMC_MODEL_DIR).")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Recompute every candidate instead of reusing finished stages.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object on the last line.")] = False,
) -> None:
    """Find the fastest student meeting a target (speed-up measured on this CPU, or MACs) and the gate's accuracy limits.

    Candidates (per-layer allocations by measured damage, int8, block dropping, distillation) fan out on Dask; each
    gets a short recovery, the most promising a full one, the nearest accuracy misses a long one
    (``target.long_factor``). The fastest that passes is registered with the gate's
    alias; when none passes, the closest is registered without it and the message says what each limit missed by.
    """
    use_directories(data_dir, model_dir)
    cores = os.cpu_count() or 1
    target = out or Path("reports") / "tune" / time.strftime("%Y%m%d-%H%M%S")
    check_output_path(target, "--out")
    try:
        if not 0 <= workers <= MAX_WORKERS_PER_CORE * cores:
            raise FsmcError(f"--workers {workers} must lie in 0..{MAX_WORKERS_PER_CORE * cores} (0: one per core, {cores}).")
        params = load_cli_params(params_file, set_)
        check_tune_request(set_, params.target.speedup, params.target.macs)
        from fsmc.preflight import check_inputs
        from tasks.settings import check_tracking_reachable

        check_inputs(params)
        check_tracking_reachable()
        if dask_address:
            check_dask_address(dask_address)
    except FsmcError as error:
        fail(error)
    workers = workers or cores
    from flows.benchmark import dask_task_runner
    from flows.prefect_logs import hide_user_errors_in_prefect_logs
    from flows.tune import tune_flow

    hide_user_errors_in_prefect_logs()
    logging.getLogger("distributed.nanny").setLevel(logging.ERROR)
    share_prefect_api_with_workers()
    existed = target.exists()
    try:
        result = tune_flow.with_options(task_runner=dask_task_runner(dask_address, workers))(
            params=params.to_dict(), out_dir=str(target), reuse=not fresh, torch_threads=max(1, cores // workers), workers=workers,
        )
    except FsmcError as error:
        if not existed:  # a target refused once the teacher was known: nothing of this search is kept
            shutil.rmtree(target, ignore_errors=True)
        fail(error)
    if as_json:
        sys.stdout.flush()
        print(json.dumps(result, sort_keys=True, default=str))
    else:
        print_tune(result)
