"""Stage ``sample_few_shot``: draw the imbalanced few-shot set and write its manifest."""

from __future__ import annotations

from fsmc.atomic import write_json
from fsmc.config import Params
from fsmc.data.manifest import write_few_shot_manifest
from fsmc.data.sampling import profile_counts, sample_few_shot
from fsmc.data.sources import load_dataset
from fsmc.workspace import Workspace


def run(params: Params, ws: Workspace) -> dict:
    """Write ``few_shot/manifest.csv`` and ``few_shot/summary.json``; return the summary."""
    p = params.sample_few_shot
    dataset = load_dataset(params.data)
    draw = sample_few_shot(dataset.train.labels, dataset.num_classes, p.k_max, p.imbalance_ratio, p.profile, p.seed)
    write_few_shot_manifest(ws.few_shot_manifest, "train", draw.indices, dataset.train.labels, dataset.train.hashes())
    summary = {
        "dataset": dataset.name,
        "classes": list(dataset.classes),
        "profile": p.profile,
        "k_max": p.k_max,
        "imbalance_ratio": p.imbalance_ratio,
        "seed": p.seed,
        "total": int(len(draw.indices)),
        "counts": [draw.counts[c] for c in range(dataset.num_classes)],
        "ranks": [draw.ranks[c] for c in range(dataset.num_classes)],
        "profile_counts": profile_counts(dataset.num_classes, p.k_max, p.imbalance_ratio, p.profile),
    }
    write_json(ws.few_shot_summary, summary)
    return summary
