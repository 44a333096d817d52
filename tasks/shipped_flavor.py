"""An MLflow flavor module for fsmc's students: a PyTorch model for PyTorch users, the shipped runtime for everyone else.

``mlflow.models.Model.log(flavor=tasks.shipped_flavor, ...)`` calls :func:`save_model`. The version it writes has
two flavors over one registered model:

* ``pytorch`` (TorchScript): what ``mlflow.pytorch.load_model`` returns, as before;
* ``python_function``: ``fsmc/shipping/shipped_model.py`` copied into the model's ``code/`` folder as
  ``fsmc_shipped_model``, running ``shipped/model.onnx`` in the runtime, precision and threads of
  ``shipped/runtime.json``: what ``mlflow.pyfunc.load_model`` and ``mlflow models serve`` run, with no fsmc installed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import mlflow
from mlflow.models import Model

import fsmc.shipping.shipped_model as shipped_model_module

LOADER_MODULE = "fsmc_shipped_model"
SHIPPED_DATA = "shipped"
CODE_DIR = "code"


def save_model(path: str, mlflow_model: Model, pytorch_model, shipped_folder: Path | None = None, **pytorch_kwargs) -> None:
    """Save ``pytorch_model`` with mlflow.pytorch, then point the ``python_function`` flavor at ``shipped_folder``.

    ``shipped_folder`` None (the student ships in torch eager) leaves mlflow.pytorch's own pyfunc in place.
    """
    mlflow.pytorch.save_model(pytorch_model, path, mlflow_model=mlflow_model, **pytorch_kwargs)
    if shipped_folder is None:
        return
    shutil.copytree(shipped_folder, os.path.join(path, SHIPPED_DATA))
    os.makedirs(os.path.join(path, CODE_DIR), exist_ok=True)
    shutil.copyfile(shipped_model_module.__file__, os.path.join(path, CODE_DIR, f"{LOADER_MODULE}.py"))
    pyfunc = mlflow_model.flavors.pop("python_function")
    mlflow.pyfunc.add_to_model(
        mlflow_model,
        loader_module=LOADER_MODULE,
        data=SHIPPED_DATA,
        code=CODE_DIR,
        conda_env=pyfunc.get("env", {}).get("conda", "conda.yaml"),
        python_env=pyfunc.get("env", {}).get("virtualenv", "python_env.yaml"),
    )
    mlflow_model.save(os.path.join(path, "MLmodel"))
