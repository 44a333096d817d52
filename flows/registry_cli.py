"""`fsmc register-teacher` and `fsmc pull-teacher`: a user's teacher into the MLflow registry, and a registered model back out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from flows.cli_common import fail, load_cli_params, use_directories
from fsmc.config import REGISTERED_NAME_PATTERN
from fsmc.errors import FsmcError
from tasks.settings import check_registry_store, check_tracking_reachable

# torch, MLflow and scikit-learn are imported inside the commands, once the arguments are known good:
# `fsmc --help` and a refused option then answer in a fraction of a second (benchmarks/cli_startup.py measures it,
# tests/code/test_layering.py keeps the heavy libraries out of the CLI's import).


def register_teacher_command(
    name: Annotated[str, typer.Option("--name", help="Registered model name to add a version to (created if new).")],
    set_: Annotated[list[str], typer.Option("--set", help="The teacher and its data: teacher=..., teacher_weights=..., dataset=...")] = [],  # noqa: B006
    params_file: Annotated[Path, typer.Option("--params", help="Parameter file (defaults apply when absent).")] = Path("params.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Folder of <dataset>/<split>.npz files.")] = None,
    model_dir: Annotated[Path | None, typer.Option("--model-dir", help="Folder of pretrained weights.")] = None,
) -> None:
    """Register your own teacher in the MLflow registry in fsmc's form, to compress it with teacher=models:/NAME/VERSION.

    The teacher is loaded as `fsmc run` loads it (weights-only, checked against the data, sha256
    recorded), evaluated on the test split, and registered with its input contract (image shape
    and class names), so a run needs no other setting than the URI.
    """
    use_directories(data_dir, model_dir)
    if not REGISTERED_NAME_PATTERN.match(name):
        fail(FsmcError(f"--name {name!r} is not a registered model name; use letters, digits, '.', '_' and '-'."))
    try:
        params = load_cli_params(params_file, set_)
        check_tracking_reachable()
        if params.data.registry_teacher:
            raise FsmcError(
                f"data.teacher={params.data.teacher!r} is already in the registry; register a zoo name, "
                "torchvision:NAME or module:... teacher (with data.teacher_weights)."
            )
        from fsmc.preflight import check_inputs
        from tasks.registry_teacher import register_teacher

        check_inputs(params, ood_pool=False)
        result = register_teacher(params, name)
    except FsmcError as error:
        fail(error)
    if as_json:
        print(json.dumps(result, sort_keys=True))
    else:
        Console().print(
            f"registered {params.data.teacher} as [bold]{result['uri']}[/] (MLflow run {result['run_id']}): test top-1 "
            f"{100 * result['top1']:.2f} %, worst class {result['worst_class']} {100 * result['worst_class_acc']:.2f} %. "
            f"Compress it with: fsmc run --set teacher={result['uri']}"
        )


def pull_teacher(
    uri: Annotated[str, typer.Argument(help="A registered model: models:/NAME/VERSION or models:/NAME@ALIAS.")],
    set_: Annotated[list[str], typer.Option("--set", help="KEY=VALUE, e.g. teacher.trust_pickle=true for a pickled model.")] = [],  # noqa: B006
    params_file: Annotated[Path, typer.Option("--params", help="Parameter file (its teacher.trust_pickle applies).")] = Path("params.yaml"),
) -> None:
    """Fetch a registered model as a teacher (for `dvc repro` with teacher=models:/...).

    A model fsmc registered comes as its weights-only checkpoint; one registered as a pickled module only with
    teacher.trust_pickle=true (from --set or the params file). `fsmc run` does this itself before every run.
    """
    try:
        params = load_cli_params(params_file, set_)
        check_tracking_reachable()
        check_registry_store(uri)  # a missing store is named before MLflow loads
        from tasks.registry_teacher import fetch_registry_teacher

        lineage = fetch_registry_teacher(uri, trust_pickle=params.teacher.trust_pickle)
    except FsmcError as error:
        fail(error)
    Console().print(
        f"fetched {uri}: {lineage['name']} version {lineage['version']} (run {lineage['run_id']}), "
        f"{'a trusted pickled module' if lineage['format'] == 'pickle' else 'an fsmc checkpoint'}, sha256 {lineage['sha256'][:12]}"
    )
