"""``fsmc ui`` and ``fsmc server start``: the MLflow tracking server and the Prefect server, on 127.0.0.1.

Both wrap the tools' own servers with the settings notes/stack.md found to keep them
fast and offline (one MLflow worker and no job runner; Prefect analytics off). They
bind 127.0.0.1 unless ``--host`` says otherwise, which prints a warning: neither
server has authentication.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from flows.cli_common import fail
from fsmc.errors import FsmcError
from tasks.settings import artifact_root, tracking_uri

LOOPBACK = ("127.0.0.1", "localhost", "::1")
server_app = typer.Typer(add_completion=False, no_args_is_help=True, help="The Prefect server (API + UI) for scheduled flows.")
err_console = Console(stderr=True)


def _warn_if_exposed(host: str) -> None:
    if host not in LOOPBACK:
        err_console.print(
            f"[bold yellow]warning:[/] binding {host}: the server has no authentication, anyone who can reach this "
            "address can read and change runs. Use 127.0.0.1 unless that is what you want.",
            soft_wrap=True,
        )


def _check_bindable(host: str, port: int) -> None:
    """Exit 2 unless ``host:port`` can be bound now: a port in range, a known interface, not already in use.

    Why: the servers run as child processes, and their own bind failure is a traceback (and MLflow's
    exits 0), after the tracking store was already created here.
    """
    if not 1 <= port <= 65535:
        fail(FsmcError(f"--port {port} is not a TCP port; give a number from 1 to 65535 (e.g. 5000)."))
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            # As the servers bind: a port in TIME_WAIT after a stopped server is free, a listening one is not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as error:
        fail(
            FsmcError(
                f"Cannot serve on --host {host} --port {port} ({error.strerror or error}): the address is not an "
                "interface of this machine or the port is taken. Give --host 127.0.0.1 (or this machine's address) and "
                "a free --port, or stop the process using it."
            )
        )


def _tool(name: str) -> str:
    """The console script ``name`` of this interpreter's environment."""
    return str(Path(sys.executable).with_name(name))


def _serve(command: list[str], env: dict[str, str]) -> None:
    """Run a server in the foreground until it exits or Ctrl-C; exit with its status."""
    process = subprocess.Popen(command, env={**os.environ, **env})
    # SIGTERM to fsmc stops the server too (otherwise it would be orphaned).
    signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        code = process.wait()
    except KeyboardInterrupt:
        process.terminate()
        code = process.wait()
    raise typer.Exit(code)


def ui(
    host: Annotated[str, typer.Option(help="Interface to bind; 127.0.0.1 keeps it on this machine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the MLflow UI and REST API.")] = 5000,
    backend_store_uri: Annotated[str | None, typer.Option(help="Tracking store (default: $MLFLOW_TRACKING_URI or mlruns/mlflow.db here).")] = None,
) -> None:
    """Start the MLflow tracking server on the project's store, so runs and registered models are browsable."""
    _check_bindable(host, port)
    _warn_if_exposed(host)
    store = backend_store_uri or tracking_uri()
    if store.startswith("http"):
        err_console.print(f"[bold red]error:[/] the tracking URI {store!r} is already a server; give --backend-store-uri sqlite:///PATH.")
        raise typer.Exit(2)
    Console().print(f"MLflow UI on http://{host}:{port} for {store} (Ctrl-C stops it)")
    command = [
        _tool("mlflow"), "server", "--backend-store-uri", store, "--default-artifact-root", artifact_root(),
        "--host", host, "--port", str(port), "--workers", "1",
    ]
    _serve(command, {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})


@server_app.command("start")
def server_start(
    host: Annotated[str, typer.Option(help="Interface to bind; 127.0.0.1 keeps it on this machine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the Prefect API and UI.")] = 4200,
) -> None:
    """Start the Prefect server (API and UI); point flows at it with PREFECT_API_URL=http://HOST:PORT/api."""
    _check_bindable(host, port)
    _warn_if_exposed(host)
    Console().print(f"Prefect server on http://{host}:{port} (API: http://{host}:{port}/api; Ctrl-C stops it)")
    _serve(
        [_tool("prefect"), "server", "start", "--host", host, "--port", str(port)],
        {
            "PREFECT_SERVER_UI_ENABLED": "true",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # The UI asks this URL for its data; Prefect's default is port 4200 whatever --port says, so on
            # any other port the pages stayed empty ("Can't connect to Server API"). A user's own setting wins.
            "PREFECT_UI_API_URL": os.environ.get("PREFECT_UI_API_URL") or f"http://{host}:{port}/api",
            "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
        },
    )
