"""Stage ``curate_ood``: draw the OOD images, none equal to any in-distribution image."""

from __future__ import annotations

from fsmc.atomic import read_json, write_json
from fsmc.config import Params, parse_budget
from fsmc.data.manifest import write_ood_manifest
from fsmc.data.ood import curate_ood, ood_budget
from fsmc.data.sources import load_dataset, load_ood_pool
from fsmc.stages.workspace import Workspace


def run(params: Params, ws: Workspace) -> dict:
    """Write ``ood/manifest.csv`` and ``ood/summary.json``; return the summary."""
    p = params.curate_ood
    dataset = load_dataset(params.data)
    pool = load_ood_pool(params.data)
    few_shot = read_json(ws.few_shot_summary)
    mode, amount = parse_budget(p.budget)
    size = ood_budget(mode, amount, params.sample_few_shot.k_max, dict(enumerate(few_shot["counts"])))
    id_hashes = set(dataset.train.hashes()) | set(dataset.test.hashes())
    pool_hashes = pool.hashes()
    draw = curate_ood(pool_hashes, id_hashes, size, p.seed)
    write_ood_manifest(ws.ood_manifest, f"{dataset.name}-ood", draw.indices, pool.labels, pool_hashes)
    summary = {
        "budget": p.budget,
        "size": int(len(draw.indices)),
        "pool_size": draw.pool_size,
        "duplicates_removed": draw.duplicates_removed,
        "id_overlap_removed": draw.id_overlap_removed,
        "seed": p.seed,
    }
    write_json(ws.ood_summary, summary)
    return summary
