"""``fsmc serve`` and ``fsmc deploy run``: the compress flow as a scheduled Prefect deployment.

``fsmc serve`` registers ``compress/<serve.deployment>`` on the Prefect server named by
``PREFECT_API_URL`` with the cron schedule ``serve.cron`` and the validated parameters
as its defaults, then executes the runs the server schedules or that ``fsmc deploy run``
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

from fsmc.errors import FsmcError
from flows.cli_common import fail, load_cli_params

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
    return url


def serve(set_: SetOption = [], params_file: ParamsOption = Path("params.yaml")) -> None:  # noqa: B006
    """Serve the compress flow on the Prefect server with the cron schedule of params (serve.cron)."""
    url = _require_server()
    try:
        params = load_cli_params(params_file, set_)
    except FsmcError as error:
        fail(error)
    from flows.compress import compress_flow

    Console().print(
        f"serving compress/{params.serve.deployment} on {url} (cron '{params.serve.cron}', UTC); "
        f"trigger now with `fsmc deploy run {params.serve.deployment}`; Ctrl-C stops serving."
    )
    compress_flow.serve(
        name=params.serve.deployment,
        cron=params.serve.cron,
        parameters={"params": params.to_dict(), "workspace": ""},
        print_starting_message=False,
    )


@deploy_app.command("run")
def deploy_run(
    name: Annotated[str, typer.Argument(help="Deployment name (e.g. nightly, or compress/nightly).")],
    set_: SetOption = [],  # noqa: B006
    params_file: ParamsOption = Path("params.yaml"),
    timeout: Annotated[int, typer.Option(help="Seconds to wait for the run to finish (0: do not wait).")] = 3600,
) -> None:
    """Trigger a run of a served deployment through the Prefect API, with params.yaml and --set as its parameters."""
    _require_server()
    try:
        params = load_cli_params(params_file, set_)
    except FsmcError as error:
        fail(error)
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    full_name = name if "/" in name else f"compress/{name}"
    try:
        flow_run = run_deployment(full_name, parameters={"params": params.to_dict(), "workspace": ""}, timeout=timeout)
    except ObjectNotFound:
        fail(FsmcError(f"No deployment {full_name!r} on the Prefect server; start `fsmc serve` first (it registers compress/<serve.deployment>)."))
    state = flow_run.state
    Console().print(f"flow run {flow_run.name} ({flow_run.id}): {state.name if state else 'scheduled'}")
    if timeout and (state is None or not state.is_completed()):
        raise typer.Exit(1)
