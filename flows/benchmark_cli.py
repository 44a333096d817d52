"""``fsmc benchmark --preset NAME``: the benchmark flow on a Dask task runner, and its terminal table."""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flows.cli_common import check_output_path, fail
from fsmc.errors import FsmcError

# A worker is a process with torch loaded (hundreds of MB); more than this per core only thrashes.
MAX_WORKERS_PER_CORE = 4


def share_prefect_api_with_workers() -> None:
    """Start this process's temporary Prefect server now and name it in ``PREFECT_API_URL``.

    Without a server URL every Dask worker process would start a temporary Prefect server of its
    own (~200 MB and seconds of CPU each); workers spawned after this inherit the URL and report
    their task runs to the flow's server. A user's ``PREFECT_API_URL`` is left alone.
    """
    if os.environ.get("PREFECT_API_URL"):
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the instance the flow's own client would start: one server
    server.start()
    os.environ["PREFECT_API_URL"] = server.api_url


def check_dask_address(address: str, timeout: float = 5.0) -> None:
    """Raise :class:`FsmcError` within ``timeout`` seconds when no Dask scheduler answers at ``address``."""
    from distributed import Client

    try:
        Client(address, timeout=timeout).close()
    except (OSError, TimeoutError, ValueError) as error:
        raise FsmcError(
            f"No Dask scheduler answers at --dask-address {address} ({type(error).__name__}: {error}). Start one "
            "(`dask scheduler` and `dask worker ADDRESS`), fix the address (tcp://HOST:PORT), or leave --dask-address out "
            "to run on a local cluster."
        ) from None


def _fmt(entry: dict, key: str) -> str:
    mean, std = entry[key], entry.get(f"{key}_std", 0.0)
    if math.isnan(mean):
        return "–"
    return f"{mean:.1f}±{std:.1f}" if entry["seeds"] > 1 else f"{mean:.1f}"


def print_table(result: dict[str, Any], axes: list[str], console: Console | None = None) -> None:
    """The paper's table: teachers, then one row per setting (mean ± std over seeds).

    In a terminal too narrow for one students table (80 columns, say) it is printed as two,
    accuracies then gaps and cost, so no number is cut.
    """
    console = console or Console()
    teachers = Table(title="teachers (test accuracy %; balanced accuracy is in results.csv)")
    for column in ("teacher", "top-1", "minority", "worst", "MACs", "params", "ms"):
        teachers.add_column(column, justify="right", no_wrap=column != "teacher")
    for t in result["teachers"]:
        teachers.add_row(t["teacher"], *(f"{t[k]:.2f}" for k in ("top1", "minority", "worst_class")),
                         f"{t['macs'] / 1e6:.1f} M", f"{t['params'] / 1e3:.0f} k", f"{t['latency_ms']:.2f}")
    console.print(teachers)
    # Axes with one value in this grid say nothing per row; they are in the title of results.csv.
    shown = [a for a in axes if a != "seed" and len({entry[a] for entry in result["summary"]}) > 1] or [axes[0]]
    teacher_macs = {t["teacher"]: t["macs"] for t in result["teachers"]}
    columns: dict[str, list[str]] = {a: [str(e[a]) for e in result["summary"]] for a in shown}
    columns["seeds"] = [str(e["seeds"]) for e in result["summary"]]
    for label, key in (("top-1", "top1"), ("minor.", "minority"), ("worst", "worst_class"), ("Δtop-1", "top1_gap"),
                       ("Δminor.", "minority_gap"), ("Δworst", "worst_class_gap")):
        columns[label] = [_fmt(e, key) for e in result["summary"]]
    columns["MACs"] = [f"x{e['macs'] / teacher_macs[e['teacher']]:.2f}" for e in result["summary"]]
    columns["ms"] = [f"{e['latency_ms']:.1f}" for e in result["summary"]]
    columns["speed-up"] = [f"x{e['speedup']:.2f}" for e in result["summary"]]
    columns["b1"] = [f"x{e['speedup_b1']:.2f}" if math.isfinite(e.get("speedup_b1", math.nan)) else "-" for e in result["summary"]]
    title = f"benchmark {result['preset']}: students (%, mean ± std over seeds; gap = student - teacher)"
    accuracy = [*shown, "seeds", "top-1", "minor.", "worst"]
    gaps = [*shown, "Δtop-1", "Δminor.", "Δworst", "MACs", "ms", "speed-up", "b1"]
    every = [*accuracy, *gaps[len(shown) :]]
    if _natural_width(columns, every) <= console.width:
        console.print(_students_table(title, columns, every, shown))
    else:
        console.print(_students_table(title + ", accuracy", columns, accuracy, shown))
        if _natural_width(columns, gaps) <= console.width:
            console.print(_students_table("gaps to the teacher and cost", columns, gaps, shown))
        else:  # a narrower terminal still: gaps, then cost
            cost_from = gaps.index("MACs")
            console.print(_students_table("gaps to the teacher", columns, gaps[:cost_from], shown))
            console.print(_students_table("cost", columns, [*shown, *gaps[cost_from:]], shown))
    console.print(
        f"{result['cells']} cells ({result['reused_cells']} reused whole from the stage cache) in {result['wall_seconds']:.1f} s; "
        f"{result['results_csv']}, {result['results_json']}, {result['report']}; MLflow parent run {result['mlflow_run_id']}"
    )
    console.print(
        "ms and speed-up: median latency at gate.latency_batch, teacher and student both in the runtime the student ships in "
        "(fsmc.shipping, chosen on this CPU; results.json names it per cell); b1: the speed-up at batch 1."
    )
    for skipped in result["skipped"][:5]:
        console.print(f"[yellow]left out[/] {skipped['labels']}: {skipped['reason']}")


def _natural_width(columns: dict[str, list[str]], names: list[str]) -> int:
    """Characters a rich table of these columns needs without wrapping any cell (3 of border + padding each)."""
    return 1 + sum(3 + max(len(name), *(len(cell) for cell in columns[name])) for name in names)


def _students_table(title: str, columns: dict[str, list[str]], names: list[str], shown: list[str]) -> Table:
    table = Table(title=title)
    for name in names:
        # Numbers never wrap or shrink: a cut "96.…" is worse than a second table.
        table.add_column(name, justify="left" if name in shown else "right", no_wrap=name not in shown)
    for row in zip(*(columns[name] for name in names), strict=True):
        table.add_row(*row)
    return table


def benchmark(
    preset: Annotated[str, typer.Option("--preset", help="smoke | paper-cifar10 | robustness-cifar10")] = "smoke",
    only: Annotated[list[str], typer.Option("--only", help="Run a slice: AXIS=VALUE (e.g. method=mir, budget='K=10').")] = [],  # noqa: B006
    set_: Annotated[list[str], typer.Option("--set", help="Override a parameter in every cell: section.key=value.")] = [],  # noqa: B006
    params_file: Annotated[Path, typer.Option("--params", help="Parameter file the presets apply to.")] = Path("params.yaml"),
    out: Annotated[Path | None, typer.Option("--out", help="Folder for cells and results (default reports/<preset>).")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Dask worker processes of the local cluster (default: one per core).")] = 0,
    dask_address: Annotated[str | None, typer.Option("--dask-address", help="Use an existing Dask scheduler, tcp://HOST:PORT.")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Recompute every cell instead of reusing finished stages.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object on the last line.")] = False,
) -> None:
    """Run a preset's grid of compression experiments on Dask; print the table, write results and the HTML report."""
    from fsmc.benchmark.grid import expand
    from fsmc.config import read_params_file
    from fsmc.config.presets import get_preset
    from fsmc.preflight import check_inputs
    from tasks.settings import check_tracking_reachable

    cores = os.cpu_count() or 1
    try:
        if workers < 0:
            raise FsmcError(f"--workers {workers} is negative; give a count of worker processes, or 0 for one per core ({cores}).")
        if workers > MAX_WORKERS_PER_CORE * cores:
            raise FsmcError(
                f"--workers {workers} is more than {MAX_WORKERS_PER_CORE} per core ({MAX_WORKERS_PER_CORE * cores} on this machine): "
                f"each worker is a process holding torch, and that many would exhaust memory. Give at most "
                f"{MAX_WORKERS_PER_CORE * cores}, or 0 for one per core ({cores})."
            )
        spec = get_preset(preset)
        # Only the default params.yaml may be absent; a named file that is missing or unreadable is a mistake.
        if params_file.is_file() or params_file != Path("params.yaml"):
            read_params_file(params_file)
        grid = expand(spec, params_file if params_file.is_file() else None, only, set_)
        checked = set()
        for cell in grid.cells:  # missing data or weights are named before any work
            key = (cell.params.data.dataset, cell.params.data.ood_pool, cell.params.data.teacher)
            if key not in checked:
                check_inputs(cell.params)
                checked.add(key)
        check_tracking_reachable()
        if dask_address:
            check_dask_address(dask_address)
    except FsmcError as error:
        fail(error)
    check_output_path(out or Path("reports") / preset, "--out")
    workers = workers or min(cores, len(grid.cells))
    from flows.benchmark import benchmark_flow, dask_task_runner
    from flows.prefect_logs import hide_user_errors_in_prefect_logs

    hide_user_errors_in_prefect_logs()
    # Workers busy in torch take a few seconds to stop; the nanny's "killing" warning says nothing useful.
    logging.getLogger("distributed.nanny").setLevel(logging.ERROR)
    share_prefect_api_with_workers()
    runner = dask_task_runner(dask_address, workers)
    try:
        result = benchmark_flow.with_options(task_runner=runner)(
            preset=preset, only=only, overrides=set_, params_file=str(params_file) if params_file.is_file() else "",
            out_dir=str(out or ""), reuse=not fresh, torch_threads=max(1, cores // workers),
        )
    except FsmcError as error:
        fail(error)
    if as_json:
        sys.stdout.flush()
        print(json.dumps(result, sort_keys=True, default=str))
    else:
        print_table(result, [axis for axis, _ in spec.axes])
