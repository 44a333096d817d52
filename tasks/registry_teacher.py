"""Registry teachers: register any teacher fsmc can load, and fetch one (``models:/NAME/VERSION`` or ``@ALIAS``).

fsmc registers each student together with its run's folder, whose ``recover/model.pt`` is
fsmc's weights-only checkpoint; ``fsmc register-teacher`` logs a user's own teacher the same
way (its checkpoint at ``teacher/model.pt``). That file, not the registered model, is what a
run compresses: loading it runs no code. A model version without it (registered by another
tool as a pickled module) is refused with what to pass instead. The version's signature and
metadata (input shape, class names) are recorded beside the fetched file: they are the
teacher's input contract (:mod:`fsmc.models.input_contract`).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from sklearn.metrics import accuracy_score, recall_score

import fsmc.stages.teacher as teacher_stage
from fsmc.atomic import atomic_write, sha256_file, write_json
from fsmc.config import Params
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.errors import FsmcError
from fsmc.models.checkpoint import load_checkpoint
from fsmc.models.input_contract import signature_input_shape
from fsmc.models.user_teacher import registry_teacher_file
from fsmc.runtime import predict_logits
from fsmc.workspace import Workspace
from tasks.settings import check_registry_store, use_tracking_store
from tasks.tracking import experiment_id, git_commit, log_model_version

# Where log_run puts the student's fsmc checkpoint among the run's artifacts, and register_teacher a teacher's.
CHECKPOINT_ARTIFACT = "pipeline/recover/model.pt"
TEACHER_CHECKPOINT_ARTIFACT = "teacher/model.pt"


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


def _download_checkpoint(uri: str, run_id: str, scratch: str) -> str:
    for artifact in (CHECKPOINT_ARTIFACT, TEACHER_CHECKPOINT_ARTIFACT):
        try:
            return mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact, dst_path=scratch)
        except (MlflowException, OSError):
            continue
    raise FsmcError(
        f"{uri} (run {run_id}) has no fsmc checkpoint ({CHECKPOINT_ARTIFACT} or {TEACHER_CHECKPOINT_ARTIFACT}): it was "
        "not registered by fsmc, and fsmc does not unpickle a registered pytorch model because loading one runs "
        "arbitrary code. Save its state dict and register it with `fsmc register-teacher --name NAME --set "
        "teacher=torchvision:ARCH --set teacher_weights=PATH`, or pass those two settings to `fsmc run` directly."
    )


def _input_contract(name: str, version: str) -> dict[str, Any]:
    """The registered version's input shape [C, H, W] (signature) and class names (metadata), where recorded."""
    try:
        info = mlflow.models.get_model_info(f"models:/{name}/{version}")
    except (MlflowException, OSError):
        return {}
    contract: dict[str, Any] = {}
    if info.signature is not None and info.signature.inputs is not None:
        shape = signature_input_shape(info.signature.inputs.to_dict())
        if shape is not None:
            contract["input_shape"] = shape
    names = (info.metadata or {}).get("class_names")
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        contract["class_names"] = names
    return contract


def fetch_registry_teacher(uri: str) -> dict[str, Any]:
    """Download the fsmc checkpoint of registry teacher ``uri`` to its local file; return its lineage and input contract."""
    check_registry_store(uri)
    use_tracking_store()
    client = mlflow.MlflowClient()
    version = _model_version(client, uri)
    target = registry_teacher_file(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        local = _download_checkpoint(uri, version.run_id, scratch)
        load_checkpoint(Path(local))  # an fsmc checkpoint, loadable with weights_only=True, or a clear error
        atomic_write(target, lambda tmp: shutil.copyfile(local, tmp))
    lineage = {
        "uri": uri,
        "name": version.name,
        "version": str(version.version),
        "run_id": version.run_id,
        "sha256": sha256_file(target),
        **_input_contract(version.name, str(version.version)),
    }
    write_json(target.with_suffix(".json"), lineage)
    return lineage


def register_teacher(params: Params, name: str) -> dict[str, Any]:
    """Register the teacher ``params.data.teacher`` (zoo, torchvision, module or checkpoint) as a version of ``name``.

    The teacher is loaded exactly as a run's teacher stage loads it (weights checked and hashed),
    evaluated on the test split, and logged in fsmc's form: its weights-only checkpoint plus an
    MLflow pytorch model with fsmc's input contract. Runs then compress it with
    ``teacher=models:/NAME/VERSION``, and their students name it as their teacher's lineage.

    Returns:
        ``{"name", "version", "run_id", "uri", "top1", "worst_class_acc", "worst_class"}``.
    """
    use_tracking_store()
    dataset = load_dataset(params.data)
    with tempfile.TemporaryDirectory() as scratch:
        ws = Workspace(Path(scratch))
        teacher_stage.run(params, ws)
        model, _, meta = load_checkpoint(ws.teacher_model)
        labels = dataset.test.labels
        predictions = predict_logits(model, to_tensor(dataset.test.images, dataset.test.pixel_max)).argmax(1).numpy()
        per_class = recall_score(labels, predictions, labels=list(range(len(dataset.classes))), average=None, zero_division=0)
        top1 = float(accuracy_score(labels, predictions))
        worst = int(per_class.argmin())
        source = meta.get("source", {})
        tags = {"fsmc.role": "teacher", "teacher": params.data.teacher, "dataset": params.data.dataset, "git_commit": git_commit()}
        if source.get("weights_sha256"):
            tags |= {"teacher_weights": source["weights"], "teacher_weights_sha256": source["weights_sha256"]}
        description = (
            f"Teacher {params.data.teacher} on {dataset.name} ({len(dataset.classes)} classes), registered by fsmc: "
            f"test top-1 {100 * top1:.2f} %, worst class {dataset.classes[worst]} {100 * per_class[worst]:.2f} %. "
            f"Compress it with `fsmc run --set teacher=models:/{name}/<version>`."
        )
        with mlflow.start_run(
            experiment_id=experiment_id(params.tracking.experiment),
            run_name=f"register {params.data.teacher} ({dataset.name})",
            tags={**tags, "mlflow.note.content": description},
        ) as run:
            mlflow.log_params({"data.teacher": params.data.teacher, "data.dataset": params.data.dataset})
            mlflow.log_metrics(
                {"top1": top1, "worst_class_acc": float(per_class[worst])}
                | {f"class_acc.{c}": float(a) for c, a in zip(dataset.classes, per_class, strict=True)}
            )
            mlflow.log_artifact(str(ws.teacher_model), artifact_path=str(Path(TEACHER_CHECKPOINT_ARTIFACT).parent))
            example = to_tensor(dataset.test.images[:4], dataset.test.pixel_max)
            _, version = log_model_version(model, example, dataset.classes, name, tags, description, artifact_name="teacher")
    return {
        "name": name,
        "version": version,
        "run_id": run.info.run_id,
        "uri": f"models:/{name}/{version}",
        "top1": top1,
        "worst_class_acc": float(per_class[worst]),
        "worst_class": dataset.classes[worst],
    }
