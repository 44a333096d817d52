"""Stage ``curate_ood``: draw the OOD images, none of an excluded class or equal to an ID image.

Order of removal: pool classes that are really ID classes (e.g. Tiny-ImageNet's
cats for CIFAR-10), exact duplicates, images equal to any ID train/test image,
then (optional) near-ID images the teacher is confident about.
"""

from __future__ import annotations

import torch

from fsmc.atomic import read_json, write_json
from fsmc.config import Params, parse_budget
from fsmc.data.images import to_tensor
from fsmc.data.manifest import write_ood_manifest
from fsmc.data.ood import curate_ood, ood_budget
from fsmc.data.sources import load_dataset, load_ood_pool
from fsmc.models.checkpoint import load_checkpoint
from fsmc.teacher_outputs import images_key, teacher_outputs
from fsmc.workspace import Workspace


def run(params: Params, ws: Workspace) -> dict:
    """Write ``ood/manifest.csv`` and ``ood/summary.json``; return the summary."""
    p = params.curate_ood
    dataset = load_dataset(params.data)
    pool = load_ood_pool(params.data)
    few_shot = read_json(ws.few_shot_summary)
    mode, amount = parse_budget(p.budget)
    size = ood_budget(mode, amount, params.sample_few_shot.k_max, dict(enumerate(few_shot["counts"])))
    id_hashes = set(dataset.train.hashes()) | set(dataset.test.hashes())
    pool_hashes = pool.images.hashes()
    near_id = None
    if p.near_id_threshold < 1.0:
        teacher, _, _ = load_checkpoint(ws.teacher_model)
        images = to_tensor(pool.images.images, pool.images.pixel_max)
        outputs, _ = teacher_outputs(ws.teacher_model, teacher, images, images_key(pool_hashes))
        confidence = torch.softmax(outputs["logits"], dim=1).max(dim=1).values.numpy()
        near_id = confidence >= p.near_id_threshold
    draw = curate_ood(pool_hashes, id_hashes, size, p.seed, pool.images.labels, pool.excluded_labels, near_id)
    write_ood_manifest(ws.ood_manifest, pool.name, draw.indices, pool.images.labels, pool_hashes)
    summary = {
        "pool": pool.name,
        "budget": p.budget,
        "size": int(len(draw.indices)),
        "pool_size": draw.pool_size,
        "excluded_labels": sorted(pool.excluded_labels),
        "excluded_class_removed": draw.excluded_class_removed,
        "duplicates_removed": draw.duplicates_removed,
        "id_overlap_removed": draw.id_overlap_removed,
        "near_id_threshold": p.near_id_threshold,
        "near_id_removed": draw.near_id_removed,
        "seed": p.seed,
    }
    write_json(ws.ood_summary, summary)
    return summary


