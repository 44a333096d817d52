"""Stage ``record_inputs``: which raw files (data, OOD pool, teacher weights) a pipeline reads, by sha256.

The raw files live outside the repo (``--data-dir`` / ``--model-dir``), so they
are not copied into DVC; this record names each by its path relative to its
folder and its verified sha256, and every stage that reads raw files depends on
it. A changed known file is refused at load time (its sha256 is pinned in
``fsmc.data.checksums`` / ``fsmc.models.registry``), so the record only changes
when the choice of inputs does.
"""

from __future__ import annotations

from fsmc.atomic import sha256_file, write_json
from fsmc.config import Params
from fsmc.data.checksums import KNOWN_DATA
from fsmc.models.factory_net import factory_source_sha256
from fsmc.models.pretrained import PRETRAINED
from fsmc.models.user_teacher import teacher_weights_file
from fsmc.preflight import check_inputs
from fsmc.workspace import Workspace

_FILES = {
    "cifar10": ["cifar10/train.npz", "cifar10/test.npz", "cifar10/classes.json"],
    "tinyimagenet": [
        "tinyimagenet/val.npz",
        "tinyimagenet/train_subset.npz",
        "tinyimagenet/classes.json",
        "tinyimagenet/cifar10_overlap.json",
    ],
}


def _teacher_weights(params: Params) -> dict | None:
    d = params.data
    if d.teacher in PRETRAINED:
        return {"file": PRETRAINED[d.teacher].file, "sha256": PRETRAINED[d.teacher].sha256}
    if d.user_teacher:  # a user's file: its bytes decide whether later stages can be reused
        path = teacher_weights_file(d).resolve()
        record = {"file": str(path), "sha256": sha256_file(path)}
        if d.module_target:  # the factory's code is the architecture: an edit makes another teacher
            record["module"], record["module_sha256"] = d.module_target, factory_source_sha256(d.module_target)
        return record
    return None


def run(params: Params, ws: Workspace) -> dict:
    """Verify every raw input and write ``inputs/sources.json``."""
    check_inputs(params)
    pool = params.data.resolved_ood_pool
    files = [{"file": f, "sha256": KNOWN_DATA[f]} for f in _FILES.get(params.data.dataset, []) + _FILES.get(pool, [])]
    record = {
        "dataset": params.data.dataset,
        "ood_pool": pool,
        "data_files": files,
        "embedded": [name for name in (params.data.dataset, pool) if name in ("digits", "photo-patches")],
        "teacher_weights": _teacher_weights(params),
    }
    write_json(ws.input_sources, record)
    return record
