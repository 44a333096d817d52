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


def check_output_path(path: Path, option: str, folder: bool = True) -> None:
    """Exit 2 unless ``path`` is, or can be created as, a folder (``folder``) or a file.

    Why: the flows create their outputs deep inside a task, where a file in the way (or a folder where a file
    goes) surfaced as a traceback after work had started.
    """
    if not folder and path.is_dir():
        fail(FsmcError(f"{option} {path} is a folder; give the path of the file to write (e.g. {path / 'student.onnx'})."))
    parents = (path, *path.parents) if folder else path.parents
    existing = next((p for p in parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        named = "is a file" if existing == path else f"cannot be created: {existing} is a file"
        what = "a folder (an existing one, or a new path whose parents are folders)" if folder else "a path whose parents are folders"
        fail(FsmcError(f"{option} {path} {named}; give {what}."))
