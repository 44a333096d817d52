"""What every ``fsmc`` command shares: loading parameters and failing with one clear paragraph."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

from fsmc.config import Params, load_params
from fsmc.errors import BAD_INPUT_EXIT_CODE, FsmcError

err_console = Console(stderr=True)


def fail(error: Exception) -> NoReturn:
    """Print ``error`` as one paragraph on stderr and exit with the bad-input code."""
    err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
    raise typer.Exit(BAD_INPUT_EXIT_CODE)


def load_cli_params(params_file: Path, overrides: list[str]) -> Params:
    """params.yaml plus ``--set`` overrides; the shipped params.yaml is optional (defaults apply without one)."""
    path = params_file if params_file.exists() or params_file != Path("params.yaml") else None
    return load_params(path, overrides)


def use_directories(data_dir: Path | None, model_dir: Path | None) -> None:
    """Point ``FSMC_DATA_DIR`` / ``FSMC_MODEL_DIR`` at ``--data-dir`` / ``--model-dir`` (exit 2 if not a folder)."""
    # The stage workers read these from the environment, so every Prefect task sees the same folders.
    for option, variable, value in (("--data-dir", "FSMC_DATA_DIR", data_dir), ("--model-dir", "FSMC_MODEL_DIR", model_dir)):
        if value is None:
            continue
        if not value.is_dir():
            fail(FsmcError(f"{option} {value} is not a directory; give the folder that holds the files."))
        os.environ[variable] = str(value.resolve())
