"""Registry teachers: register any teacher fsmc can load, and fetch one (``models:/NAME/VERSION`` or ``@ALIAS``).

fsmc registers each student together with its run's folder, whose ``recover/model.pt`` is
fsmc's weights-only checkpoint; ``fsmc register-teacher`` logs a user's own teacher the same
way (its checkpoint at ``teacher/model.pt``). That file, not the registered model, is what a
run compresses: loading it runs no code. A model version without it (registered by another
tool as a pickled module) is refused with what to pass instead, unless the user trusts the registry
(``teacher.trust_pickle``). The version's signature and
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
import mlflow.models
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
from fsmc.models.trusted_pickle import TRUST_KEY, load_trusted_module, trust_module_file, trusted_module_file
from fsmc.models.user_teacher import registry_teacher_file
from fsmc.runtime import predict_logits
from fsmc.workspace import Workspace
from tasks.git_info import git_commit
from tasks.model_registry import log_model_version
from tasks.settings import check_registry_store, use_tracking_store
from tasks.tracking import experiment_id

# Where log_run puts the student's fsmc checkpoint among the run's artifacts, and register_teacher a teacher's.
CHECKPOINT_ARTIFACT = "pipeline/recover/model.pt"
TEACHER_CHECKPOINT_ARTIFACT = "teacher/model.pt"
HOW_TO_REGISTER = (
    "save its state dict and register it with `fsmc register-teacher --name NAME --set teacher=torchvision:ARCH "
    "--set teacher_weights=PATH` (or module:PKG.MODULE:FUNCTION for your own class), or pass those two settings "
    "to `fsmc run` directly"
)


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


def _download_checkpoint(run_id: str, scratch: str) -> str | None:
    """The local copy of the run's fsmc checkpoint; ``None`` when the version was not registered by fsmc."""
    for artifact in (CHECKPOINT_ARTIFACT, TEACHER_CHECKPOINT_ARTIFACT):
        try:
            return mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact, dst_path=scratch)
        except (MlflowException, OSError):
            continue
    return None


def _pickled_module_file(uri: str, name: str, version: str, scratch: str) -> Path:
    """MLflow's pickled module of registered model ``name``/``version`` (``data/model.pth``), downloaded; refused otherwise."""
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=scratch))
        flavors = mlflow.models.Model.load(str(local / "MLmodel")).flavors
    except (MlflowException, OSError) as error:
        raise FsmcError(f"{uri} could not be downloaded from the registry ({type(error).__name__}: {error}).") from None
    data = local / flavors.get("pytorch", {}).get("model_data", "data")
    if (data / "model.pth").is_file():
        return data / "model.pth"
    if (data / "model.pt2").is_file():
        raise FsmcError(
            f"{uri} was registered by another tool as a torch.export program (model.pt2): a flattened graph, which "
            f"fsmc cannot prune or split into features and head. To compress it, {HOW_TO_REGISTER}."
        )
    raise FsmcError(
        f"{uri} is not an fsmc checkpoint nor a pytorch model (its flavors: {', '.join(flavors) or 'none'}). "
        f"To compress it, {HOW_TO_REGISTER}."
    )


def _refuse_pickle(uri: str, run_id: str) -> FsmcError:
    return FsmcError(
        f"{uri} (run {run_id}) was registered by another tool as a pickled module (no fsmc checkpoint "
        f"{CHECKPOINT_ARTIFACT} or {TEACHER_CHECKPOINT_ARTIFACT}), and fsmc does not unpickle it by default because "
        f"loading a pickle runs arbitrary code. If you trust this registry, pass --set {TRUST_KEY}=true. Otherwise, "
        f"{HOW_TO_REGISTER}."
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


def fetch_registry_teacher(uri: str, trust_pickle: bool = False) -> dict[str, Any]:
    """Download registry teacher ``uri`` to its local file; return its lineage and input contract.

    A version fsmc registered is fetched as its weights-only checkpoint. One another tool registered as a
    pickled module is refused, unless ``trust_pickle`` (``teacher.trust_pickle``): then MLflow's pickle goes to
    fsmc's trusted store (:mod:`fsmc.models.trusted_pickle`) and is unpickled once to check it.
    """
    check_registry_store(uri)
    use_tracking_store()
    client = mlflow.MlflowClient()
    version = _model_version(client, uri)
    target = registry_teacher_file(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        local = _download_checkpoint(version.run_id, scratch)
        if local is not None:
            load_checkpoint(Path(local))  # an fsmc checkpoint, loadable with weights_only=True, or a clear error
            stored_format = "fsmc-checkpoint"
        else:
            pickled = _pickled_module_file(uri, version.name, str(version.version), scratch)
            if not trust_pickle:
                raise _refuse_pickle(uri, version.run_id)
            # MLflow's own file (a whole module saved with cloudpickle) is stored as it is; unpickling it once,
            # here, checks that it is a network whose classes import, before any run starts.
            sha256 = trust_module_file(pickled)
            load_trusted_module(sha256)
            local, stored_format = str(trusted_module_file(sha256)), "pickle"
        atomic_write(target, lambda tmp: shutil.copyfile(local, tmp))
    lineage = {
        "uri": uri,
        "name": version.name,
        "version": str(version.version),
        "run_id": version.run_id,
        "format": stored_format,
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
