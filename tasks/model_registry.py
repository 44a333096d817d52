"""Logging a model to MLflow and registering it: the registered formats (TorchScript + the shipped runtime), the input contract, version tags."""

from __future__ import annotations

import importlib.metadata
import logging
import warnings
from pathlib import Path

import mlflow
import numpy as np
import torch
from mlflow.exceptions import MlflowException
from mlflow.models import Model, infer_signature

import tasks.shipped_flavor


def tag_version(name: str, version: str, tags: dict[str, str]) -> None:
    """Set ``tags`` on registered model version ``name`` / ``version``."""
    client = mlflow.MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def register_version(info, name: str, tags: dict[str, str], description: str) -> str:
    """Register the logged model ``info`` as a new version of ``name`` with ``tags`` and ``description``; its number.

    Through the client rather than ``log_model(registered_model_name=...)``, which prints "Successfully
    registered model" and "Created version" to stderr on every run: registry news belongs in fsmc's own summary.
    """
    client = mlflow.MlflowClient()
    try:
        client.create_registered_model(name)
    except MlflowException as error:  # the usual case after the first run (or another run created it just now)
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(
        name, source=info.model_uri, run_id=info.run_id, tags=tags, description=description, model_id=info.model_id
    )
    return str(version.version)


def log_model_version(
    model: torch.nn.Module,
    example: torch.Tensor,
    class_names: tuple[str, ...],
    registered_name: str,
    tags: dict[str, str],
    description: str,
    artifact_name: str = "student",
    shipped: tuple[Path, dict] | None = None,
):
    """Log ``model`` as the active run's ``artifact_name`` model and register it as a new version of ``registered_name``.

    The signature (float images in [0, 1], N x C x H x W, any batch size) and the class names in the
    metadata are fsmc's input contract: a model logged here can be the teacher of a next round
    (``teacher=models:/...``) with no settings about its input.

    ``shipped`` (the shipped folder and its ``runtime.json`` choice) makes the version's ``python_function``
    flavor run that runtime (:mod:`tasks.shipped_flavor`); ``mlflow.pytorch.load_model`` still gives TorchScript.

    Returns:
        (MLflow's ModelInfo, the registered version number as a string).
    """
    signature = infer_signature(example.numpy(), model(example).detach().numpy().astype(np.float32))
    requirements = [f"torch=={torch.__version__.split('+')[0]}", f"numpy=={np.__version__}"]
    shipped_folder = None
    if shipped is not None and shipped[1]["runtime"] != "torch":
        shipped_folder, runtime = shipped[0], shipped[1]["runtime"]
        requirements.append(f"{runtime}=={importlib.metadata.version(runtime)}")
    metadata = {"class_names": list(class_names), "input": "float32 images in [0, 1], N x C x H x W, normalisation inside"}
    # TorchScript for every student, float and int8: what `mlflow.pytorch.load_model` returns then takes the calls a
    # PyTorch user makes first (.eval(), .to(device), torch.no_grad()) and any batch size, and loading it runs no
    # Python pickle. (A pt2 / torch.export graph raised NotImplementedError on .eval(); int8 FX graphs cannot be
    # exported at all.) MLflow saves a ScriptModule with torch.jit.save whatever `serialization_format` says, but
    # refuses "pt2", its default, for one.
    # The format is chosen knowingly, so its notices stay out of the run's output: torch's deprecation of TorchScript,
    # and MLflow's "pickle" caution (MLflow files a ScriptModule under its pickle format, though TorchScript archives
    # hold no Python pickle) on saving and on checking the input example.
    mlflow_pytorch_log = logging.getLogger("mlflow.pytorch")
    level = mlflow_pytorch_log.level
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.(trace|trace_method|load)` is deprecated", category=FutureWarning)
        warnings.filterwarnings("ignore", message=r".*looks like a TorchScript archive", category=UserWarning)
        mlflow_pytorch_log.setLevel(logging.ERROR)
        try:
            scripted = torch.jit.trace(model.eval(), example)
            info = Model.log(
                artifact_path=None,  # required positionally by MLflow 3.17, deprecated for `name`
                name=artifact_name,
                flavor=tasks.shipped_flavor,
                pytorch_model=scripted,
                shipped_folder=shipped_folder,
                signature=signature,
                metadata=metadata,
                input_example=example.numpy(),
                serialization_format="pickle",
                pip_requirements=requirements,
            )
        finally:
            mlflow_pytorch_log.setLevel(level)
    return info, register_version(info, registered_name, tags, description)
