"""Fetch a registry teacher (``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``) before a run.

fsmc registers each student together with its run's folder, whose ``recover/model.pt`` is
fsmc's weights-only checkpoint. That file, not the registered pickle, is what a next round
compresses: loading it runs no code. A model version without it (registered by another
tool as a pickled module) is refused with what to pass instead.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from fsmc.atomic import atomic_write, read_json, sha256_file, write_json
from fsmc.errors import FsmcError
from fsmc.models.checkpoint import load_checkpoint
from fsmc.models.user_teacher import registry_teacher_file
from tasks.settings import tracking_uri

# Where log_run puts the student's fsmc checkpoint among the run's artifacts.
CHECKPOINT_ARTIFACT = "pipeline/recover/model.pt"


def _model_version(client: mlflow.MlflowClient, uri: str):
    match = re.match(r"^models:/([^/@]+)(?:/([0-9]+)|@(.+))$", uri)
    if match is None:
        raise FsmcError(f"data.teacher={uri!r} is not a registry URI; write models:/NAME/VERSION or models:/NAME@ALIAS.")
    name, version, alias = match.groups()
    try:
        return client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except MlflowException:
        try:
            known = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
        except MlflowException:
            known = []
        what = f"versions {', '.join(map(str, known))}" if known else "no versions"
        raise FsmcError(
            f"data.teacher={uri!r} is not in the MLflow registry at {client.tracking_uri} (model {name!r} has {what}). "
            "Name a registered model's version (models:/NAME/VERSION) or alias (models:/NAME@ALIAS)."
        ) from None


def fetch_registry_teacher(uri: str) -> dict[str, str]:
    """Download the fsmc checkpoint of registry teacher ``uri`` to its local file; return its lineage."""
    mlflow.set_tracking_uri(tracking_uri())
    client = mlflow.MlflowClient()
    version = _model_version(client, uri)
    target = registry_teacher_file(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        try:
            local = mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path=CHECKPOINT_ARTIFACT, dst_path=scratch)
        except (MlflowException, OSError):
            raise FsmcError(
                f"{uri} (run {version.run_id}) has no fsmc checkpoint at {CHECKPOINT_ARTIFACT}: it was not registered by "
                "fsmc, and fsmc does not unpickle a registered pytorch model because loading one runs arbitrary code. "
                "Save its state dict and pass --set teacher=torchvision:NAME --set teacher_weights=PATH instead."
            ) from None
        load_checkpoint(Path(local))  # an fsmc checkpoint, loadable with weights_only=True, or a clear error
        atomic_write(target, lambda tmp: shutil.copyfile(local, tmp))
    lineage = {
        "uri": uri,
        "name": version.name,
        "version": str(version.version),
        "run_id": version.run_id,
        "sha256": sha256_file(target),
    }
    write_json(target.with_suffix(".json"), lineage)
    return lineage


def registry_lineage(uri: str) -> dict[str, str] | None:
    """What :func:`fetch_registry_teacher` recorded for ``uri`` (``None`` if it was never fetched)."""
    record = registry_teacher_file(uri).with_suffix(".json")
    return read_json(record) if record.is_file() else None
