"""Stage ``teacher``: the model to compress, trained here once and cached across runs."""

from __future__ import annotations

import dataclasses
import shutil

import fsmc.data.embedded
import fsmc.models.small_cnn
import fsmc.models.zoo
import fsmc.train.teacher
from fsmc.atomic import atomic_write
from fsmc.cache import cache_key, cached_file
from fsmc.config import Params
from fsmc.data.sources import load_dataset
from fsmc.models.checkpoint import save_checkpoint
from fsmc.stages.workspace import Workspace
from fsmc.train.teacher import train_teacher

# Modules whose code determines the trained weights: editing one invalidates the cache.
_RECIPE_CODE = [fsmc.train.teacher, fsmc.models.small_cnn, fsmc.models.zoo, fsmc.data.embedded]


def run(params: Params, ws: Workspace) -> dict:
    """Write ``teacher/model.pt`` (from the cache when this exact recipe ran before)."""
    inputs = {"data": dataclasses.asdict(params.data), "teacher": dataclasses.asdict(params.teacher)}
    key = cache_key(inputs, _RECIPE_CODE)

    def produce(tmp):
        dataset = load_dataset(params.data)
        model, spec = train_teacher(dataset, params.data.teacher, params.teacher)
        save_checkpoint(tmp, model, spec, meta={"teacher": params.data.teacher, "recipe": inputs})

    cached, hit = cached_file("teachers", key, produce)
    atomic_write(ws.teacher_model, lambda tmp: shutil.copyfile(cached, tmp))
    return {"teacher": params.data.teacher, "cache_key": key, "cache_hit": hit}
