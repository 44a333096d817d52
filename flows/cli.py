"""The ``fsmc`` command line.

``fsmc run [--set KEY=VALUE ...] [--json]`` validates the parameters (before any
work starts), runs the ``compress`` flow and prints teacher vs student per
class. Bad input exits with code 2 and a one-paragraph message.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

import tasks  # noqa: F401  (environment defaults before prefect is imported)
from flows.benchmark_cli import benchmark
from flows.cli_common import check_output_path, fail, load_cli_params, use_directories
from flows.deploy import deploy_app, serve
from flows.prefect_logs import hide_user_errors_in_prefect_logs
from flows.registry_cli import pull_teacher, register_teacher_command
from flows.run_report import print_run_report
from flows.servers import server_app, ui
from flows.tune_cli import tune
from fsmc.errors import FsmcError
from fsmc.models.input_contract import InputContract, apply_input_contract
from fsmc.workspace import new_run_folder
from tasks.settings import check_registry_store, check_tracking_reachable

# Only typer, rich, PyYAML and fsmc's own light modules load with the command line: torch, Prefect, MLflow and
# scikit-learn are imported inside the command that needs them, so `fsmc --help` and a refused `--set` answer in
# about a second instead of seven (benchmarks/cli_startup.py measures it).

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Few-sample model compression, fair to minority classes.")
err_console = Console(stderr=True)
app.command()(ui)
app.command()(serve)
app.command()(benchmark)
app.command()(tune)
app.command("register-teacher")(register_teacher_command)
app.command("pull-teacher")(pull_teacher)
app.add_typer(server_app, name="server")
app.add_typer(deploy_app, name="deploy")
# `fsmc --help` lists commands as a user meets them: run first, the servers last.
_COMMAND_ORDER = ("run", "tune", "methods", "params", "benchmark", "export", "ui", "register-teacher", "log-run", "pull-teacher", "serve")


@app.command()
def run(
    set_: Annotated[list[str], typer.Option("--set", help="Override a parameter: section.key=value or key=value.")] = [],  # noqa: B006
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object on the last line.")] = False,
    params_file: Annotated[Path, typer.Option("--params", help="Parameter file (defaults apply when absent).")] = Path(
        "params.yaml"
    ),
    workspace: Annotated[
        Path | None, typer.Option("--workspace", help="Folder for this run's outputs (default: runs/<time>-<id>).")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Folder of <dataset>/<split>.npz files (default: $FSMC_DATA_DIR).")
    ] = None,
    model_dir: Annotated[
        Path | None, typer.Option("--model-dir", help="Folder of pretrained weights (default: $FSMC_MODEL_DIR).")
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Recompute every stage instead of reusing finished ones from the stage cache.")
    ] = False,
) -> None:
    """Compress the teacher, recover it on the few-shot set, evaluate per class and register it in MLflow.

    Stages whose inputs (params, upstream files, code) match a finished earlier run are restored
    from the stage cache, so rerunning after a crash recomputes only what did not finish.
    """
    use_directories(data_dir, model_dir)
    target = workspace or new_run_folder()
    check_output_path(target, "--workspace")  # before the data and Prefect load: a refusal answers at once
    try:
        params = load_cli_params(params_file, set_)
        check_tracking_reachable()
        from fsmc.preflight import check_inputs

        if params.data.registry_teacher:  # the pure stages read the fetched checkpoint
            check_registry_store(params.data.teacher)  # a missing store is named before MLflow loads
            from tasks.registry_teacher import fetch_registry_teacher

            lineage = fetch_registry_teacher(params.data.teacher, trust_pickle=params.teacher.trust_pickle)
            # The teacher's registered input decides the image size and channels params leave unset.
            params = dataclasses.replace(params, data=apply_input_contract(params.data, InputContract.from_record(lineage)))
        check_inputs(params)
    except FsmcError as error:
        fail(error)
    from flows.compress import LoggingFailed, compress_flow  # imports Prefect: only once the input is known good

    hide_user_errors_in_prefect_logs()

    existed = target.exists()
    try:
        result = compress_flow(params=params.to_dict(), workspace=str(target), reuse=not fresh)
    except LoggingFailed as error:
        fail(error)  # the finished outputs stay: `fsmc log-run` takes them later
    except FsmcError as error:
        # Some input problems only show once the flow runs (e.g. a pool too small after curation):
        # a run folder this command created holds nothing but a failed run's leftovers.
        if not existed:
            shutil.rmtree(target, ignore_errors=True)
        fail(error)
    if as_json:
        sys.stdout.flush()
        print(json.dumps(result, sort_keys=True))
    else:
        print_run_report(result)


@app.command("log-run")
def log_run(
    path: Annotated[Path, typer.Argument(help="A run folder (runs/<time>-<id>) whose MLflow logging failed.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Folder of <dataset>/<split>.npz files.")] = None,
    model_dir: Annotated[Path | None, typer.Option("--model-dir", help="Folder of pretrained weights.")] = None,
) -> None:
    """Log, register and gate a finished run folder, e.g. after the tracking server was unreachable."""
    from fsmc.run_folder import verify
    from fsmc.workspace import Workspace

    use_directories(data_dir, model_dir)
    ws = Workspace(path)
    missing = [p for p in (ws.run_params, ws.run_record, ws.metrics, ws.student_model) if not p.is_file()]
    if missing:
        fail(
            FsmcError(
                f"{path} is not a finished run folder: {', '.join(str(m) for m in missing)} missing. "
                "Give a runs/<time>-<id> folder whose run reached evaluation."
            )
        )
    try:
        verify(ws, [ws.run_params, ws.metrics, ws.student_model])  # a damaged folder fails before Prefect starts
        check_tracking_reachable()
    except FsmcError as error:
        fail(error)
    from flows.compress import LoggingFailed, log_run_flow

    hide_user_errors_in_prefect_logs()
    try:
        result = log_run_flow(workspace=str(path))
    except (LoggingFailed, FsmcError) as error:
        fail(error)
    if as_json:
        print(json.dumps(result, sort_keys=True))
    else:
        model = result["registered_model"]
        Console().print(f"logged {path} as MLflow run {result['mlflow_run_id']}; registered {model['name']} version {model['version']}")


@app.command()
def export(
    target: Annotated[str, typer.Argument(help="A run folder (runs/<time>-<id>) or a registered model: models:/NAME/VERSION or models:/NAME@ALIAS.")],
    format_: Annotated[str, typer.Option("--format", help="Export format (onnx).")] = "onnx",
    as_json: Annotated[bool, typer.Option("--json", help="Print the check as one JSON object.")] = False,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Folder of <dataset>/<split>.npz files.")] = None,
    model_dir: Annotated[Path | None, typer.Option("--model-dir", help="Folder of pretrained weights.")] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Where to write the .onnx file (default: FOLDER/export/student.onnx, or exports/NAME-vN.onnx for models:/)."),
    ] = None,
) -> None:
    """Export the student to ONNX, check it with onnxruntime against torch on the test split, log it to its MLflow run."""
    import tempfile

    from fsmc.run_folder import inside, verify
    from fsmc.workspace import Workspace

    use_directories(data_dir, model_dir)
    if format_ != "onnx":
        fail(FsmcError(f"--format {format_!r} is not supported; valid formats: onnx."))
    if output is not None:
        check_output_path(output, "--output", folder=False)
    with tempfile.TemporaryDirectory() as scratch:
        try:
            if target.startswith("models:/"):
                from tasks.export_tracking import registered_run_folder

                ws = Workspace(registered_run_folder(target, Path(scratch)))
            else:
                ws = Workspace(Path(target))
            if not ws.student_model.is_file() or not ws.run_params.is_file():
                raise FsmcError(
                    f"{target} holds no finished run ({ws.student_model} and {ws.run_params} are needed); give a run folder or models:/NAME/VERSION."
                )
            verify(ws, [ws.run_params, ws.student_model])
            inside(ws.onnx_model, ws.root, "The ONNX output")  # e.g. export/ a symlink to elsewhere
            # Prefect, torch, onnxruntime and the data load only for a run folder that passed the checks above.
            from flows.export import export_flow

            hide_user_errors_in_prefect_logs()
            result = export_flow(str(ws.root), None if output is None else str(output))
        except FsmcError as error:
            fail(error)
    if as_json:
        print(json.dumps(result, sort_keys=True))
    else:
        Console().print(
            f"ONNX: {result['path']}; onnxruntime vs torch on {result['images']} test images: max |logit diff| "
            f"{result['max_abs_diff']:.3g}, predictions agree {100 * result['prediction_agreement']:.2f} %"
            + (f"; logged to MLflow run {result['mlflow_run_id']}" if result["mlflow_run_id"] else "")
        )


@app.command()
def methods() -> None:
    """List the compression schemes and recovery methods (and the OE-FSMC plug-in that works on each)."""
    from fsmc.config import METHOD_DECLARATIONS, SCHEME_DECLARATIONS, applicable_methods

    console = Console()
    schemes = Table(title="compression schemes (--set scheme=NAME)")
    for column in ("scheme", "what it does", "reads compress.*", "recovery methods that apply"):
        schemes.add_column(column)
    for scheme in SCHEME_DECLARATIONS.values():
        schemes.add_row(scheme.name, scheme.summary, ", ".join(scheme.params) or "-", ", ".join(applicable_methods(scheme.name)))
    console.print(schemes)
    table = Table(title="recovery methods (--set method=NAME; --set oe=true|false for the OE-FSMC plug-in)")
    for column in ("method", "what it does", "paper", "teacher signal", "reads recover.*"):
        table.add_column(column)
    for method in METHOD_DECLARATIONS.values():
        table.add_row(method.name, method.summary, method.paper, method.teacher_signal, ", ".join(method.params) or "-")
    table.add_row(
        "+oe (oe=true)",
        "OE-FSMC: OOD images with labels drawn from the complementary prior Gamma, class weights w_c, "
        "joint ID+OOD distillation (teacher logits on every OOD image), ID and OOD averaged apart in each batch; "
        "optional early stopping on held-out OOD images (early_stopping=on)",
        "Wu et al., OE-FSMC, Pattern Recognition Letters 2026 (reconstructed)",
        "on any method",
        "oe, lambda_ood, joint_kd, id_per_batch, ood_weight, early_stopping",
    )
    console.print(table)


@app.command()
def params(
    set_: Annotated[list[str], typer.Option("--set", help="Override a parameter: section.key=value or key=value.")] = [],  # noqa: B006
    params_file: Annotated[Path, typer.Option("--params")] = Path("params.yaml"),
) -> None:
    """Print the validated parameters (after overrides) as YAML."""
    from fsmc.config import dump_params

    try:
        print(dump_params(load_cli_params(params_file, set_)), end="")
    except FsmcError as error:
        fail(error)


def _command_name(command: typer.models.CommandInfo) -> str:
    return command.name or command.callback.__name__.replace("_", "-")


def _help_position(command: typer.models.CommandInfo) -> int:
    """Where ``command`` appears in ``fsmc --help``: its place in the order, else after the listed ones (never an error)."""
    name = _command_name(command)
    return _COMMAND_ORDER.index(name) if name in _COMMAND_ORDER else len(_COMMAND_ORDER)


app.registered_commands.sort(key=_help_position)  # stable: unlisted commands keep their definition order


if __name__ == "__main__":
    app()
