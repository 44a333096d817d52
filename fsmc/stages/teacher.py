"""Stage ``teacher``: the model to compress, cached across runs by recipe and code.

* trained here (``digits-cnn``): trained from scratch on the training split;
* pretrained (``resnet56``, ...): loaded from the model directory (sha256-verified),
  then fine-tuned for ``teacher.adapt_epochs`` on the full training split if > 0;
* a user's own (``torchvision:NAME`` + ``data.teacher_weights``): the state-dict file,
  its sha256 recorded in the checkpoint's meta and the stage's result (lineage).
"""

from __future__ import annotations

import dataclasses
import shutil

from fsmc.atomic import atomic_write, sha256_file
from fsmc.cache import cache_key, cached_file
from fsmc.config import Params
from fsmc.data.sources import load_dataset
from fsmc.models.checkpoint import save_checkpoint
from fsmc.models.factory_net import factory_source_sha256
from fsmc.models.pretrained import PRETRAINED
from fsmc.models.registry import load_pretrained
from fsmc.models.user_teacher import load_user_teacher, teacher_weights_file
from fsmc.teacher_outputs import images_key
from fsmc.train.teacher import adapt_teacher, train_teacher
from fsmc.workspace import Workspace


def _recipe(params: Params) -> dict:
    t, d = params.teacher, params.data
    if d.user_teacher:
        # The file's bytes, not its path, identify the teacher: a retrained file at the same path is another one.
        return {
            "torchvision": d.torchvision_arch,
            "timm": d.timm_arch,
            "module": d.module_target,
            "module_sha256": factory_source_sha256(d.module_target) if d.module_target else "",
            "weights_sha256": sha256_file(teacher_weights_file(d)),
            "normalization": d.normalization,
            "image_size": d.image_size,
            "image_channels": d.image_channels,
            "dataset": d.dataset,
            "adapt_epochs": t.adapt_epochs,
            "adapt_lr": t.adapt_lr,
            "seed": t.seed,
        }
    if params.data.teacher in PRETRAINED:
        entry = PRETRAINED[params.data.teacher]
        return {"pretrained": entry.name, "sha256": entry.sha256, "adapt_epochs": t.adapt_epochs, "adapt_lr": t.adapt_lr, "seed": t.seed}
    recipe = {"data": dataclasses.asdict(params.data), "epochs": t.epochs, "lr": t.lr, "batch_size": t.batch_size, "seed": t.seed}
    if params.data.dataset.startswith("folder:"):  # a user's folder can change under the same path
        recipe["train_images"] = images_key(load_dataset(params.data).train.hashes())
    return recipe


def run(params: Params, ws: Workspace) -> dict:
    """Write ``teacher/model.pt`` (from the cache when this exact recipe ran before)."""
    recipe = _recipe(params)
    name = params.data.teacher

    def produce(tmp):
        meta = {"teacher": name, "recipe": recipe}
        if params.data.user_teacher:
            dataset = load_dataset(params.data)
            user = load_user_teacher(params.data, dataset.classes, dataset.image_shape, params.teacher.trust_pickle)
            model, spec = user.model, user.spec
            meta["source"] = user.source
            if params.teacher.adapt_epochs:
                model = adapt_teacher(model, dataset, params.teacher)
        elif name in PRETRAINED:
            model, spec = load_pretrained(name), PRETRAINED[name].spec
            if params.teacher.adapt_epochs:
                model = adapt_teacher(model, load_dataset(params.data), params.teacher)
        else:
            model, spec = train_teacher(load_dataset(params.data), name, params.teacher)
        save_checkpoint(tmp, model, spec, meta=meta)

    # A pretrained or user teacher used as is needs no cache entry of its own: loading is cheap.
    if (name in PRETRAINED or params.data.user_teacher) and not params.teacher.adapt_epochs:
        atomic_write(ws.teacher_model, produce)
        return {"teacher": name, "recipe": recipe, "cache_key": None, "cache_hit": False}
    key = cache_key(recipe, __name__)  # this stage's code and everything it imports decide the weights
    cached, hit = cached_file("teachers", key, produce)
    atomic_write(ws.teacher_model, lambda tmp: shutil.copyfile(cached, tmp))
    return {"teacher": name, "recipe": recipe, "cache_key": key, "cache_hit": hit}
