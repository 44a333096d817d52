"""``fsmc serve`` and ``fsmc deploy run``: the compress and benchmark flows as scheduled Prefect deployments.

``fsmc serve`` registers ``compress/<serve.deployment>`` (cron ``serve.cron``, the
validated parameters as its defaults) and ``benchmark/<serve.benchmark_preset>`` (cron
``serve.benchmark_cron``, on its Dask local cluster) on the Prefect server named by
``PREFECT_API_URL``, then executes the runs the server schedules or that ``fsmc deploy run``
triggers. It uses ``flow.serve`` (one long-lived process that runs each flow run in a
subprocess) rather than a work pool plus a worker: one machine, no infrastructure to
declare, nothing else to keep alive; a work pool becomes worth it only when runs must
land on other machines (issue 6's Dask sweeps cover the fan-out).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from flows.cli_common import fail, load_cli_params
from fsmc.errors import FsmcError
from tasks.settings import check_prefect_reachable

deploy_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Trigger deployments on the Prefect server.")
SetOption = Annotated[list[str], typer.Option("--set", help="Override a parameter: section.key=value or key=value.")]
ParamsOption = Annotated[Path, typer.Option("--params", help="Parameter file (defaults apply when absent).")]


def _require_server() -> str:
    url = os.environ.get("PREFECT_API_URL", "")
    if not url:
        fail(
            FsmcError(
                "PREFECT_API_URL is not set: deployments live on a Prefect server. Start one with `fsmc server start` "
                "and export PREFECT_API_URL=http://127.0.0.1:4200/api (with the port you chose)."
            )
        )
    try:
        check_prefect_reachable(url)
    except FsmcError as error:
        fail(error)
    return url


def serve(set_: SetOption = [], params_file: ParamsOption = Path("params.yaml")) -> None:  # noqa: B006
    """Serve the compress and benchmark flows on the Prefect server with the cron schedules of params (serve)."""
    url = _require_server()
    try:
        params = load_cli_params(params_file, set_)
    except FsmcError as error:
        fail(error)
    from prefect import serve as serve_deployments

    from flows.benchmark import benchmark_flow
    from flows.compress import compress_flow

    sv = params.serve
    Console().print(
        f"serving compress/{sv.deployment} (cron '{sv.cron}', UTC) and benchmark/{sv.benchmark_preset} "
        f"(cron '{sv.benchmark_cron}') on {url}; trigger now with `fsmc deploy run {sv.deployment}` or "
        f"`fsmc deploy run benchmark/{sv.benchmark_preset}`; Ctrl-C stops serving."
    )
    serve_deployments(
        compress_flow.to_deployment(name=sv.deployment, cron=sv.cron, parameters={"params": params.to_dict(), "workspace": ""}),
        benchmark_flow.to_deployment(
            name=sv.benchmark_preset,
            cron=sv.benchmark_cron,
            parameters={"preset": sv.benchmark_preset, "params_file": str(params_file) if params_file.is_file() else ""},
        ),
        print_starting_message=False,
    )


@deploy_app.command("run")
def deploy_run(
    name: Annotated[str, typer.Argument(help="Deployment name (e.g. nightly, or compress/nightly).")],
    set_: SetOption = [],  # noqa: B006
    params_file: ParamsOption = Path("params.yaml"),
    timeout: Annotated[int, typer.Option(help="Seconds to wait for the run to finish (0: do not wait).")] = 3600,
    only: Annotated[list[str], typer.Option("--only", help="benchmark/PRESET only: run a slice, AXIS=VALUE.")] = [],  # noqa: B006
) -> None:
    """Trigger a served deployment through the Prefect API: compress runs take params.yaml + --set; benchmark runs
    (NAME benchmark/PRESET) take --set as overrides for every cell."""
    if timeout < 0:
        fail(FsmcError(f"--timeout {timeout} is negative; give the seconds to wait for the run, or 0 not to wait."))
    _require_server()
    try:
        params = load_cli_params(params_file, set_)
    except FsmcError as error:
        fail(error)
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    full_name = name if "/" in name else f"compress/{name}"
    if full_name.startswith("benchmark/"):
        parameters = {"overrides": list(set_), "only": list(only)}  # the served preset's grid, these in every cell
    else:
        parameters = {"params": params.to_dict(), "workspace": ""}
    try:
        flow_run = run_deployment(full_name, parameters=parameters, timeout=timeout)
    except ObjectNotFound:
        fail(
            FsmcError(
                f"No deployment {full_name!r} on the Prefect server; start `fsmc serve` first "
                "(it registers compress/<serve.deployment> and benchmark/<serve.benchmark_preset>)."
            )
        )
    state = flow_run.state
    Console().print(f"flow run {flow_run.name} ({flow_run.id}): {state.name if state else 'scheduled'}")
    if timeout and (state is None or not state.is_completed()):
        raise typer.Exit(1)
