"""The plug-in on the embedded default (digits + edge maps of sample photos): base vs +oe for every method, per seed (issue 11, goal 5).

Each seed draws its few-shot set, trains (or reuses) the teacher and prunes it once; then every
method recovers with ``oe=false`` and ``oe=true`` from the same pruned student. Prints top-1 and
worst-class accuracy on the test split (540 images: one image is 0.19 points, one image of a
class about 2 points) and the mean of +oe − base over seeds.

Usage: ``python benchmarks/plugin_digits.py [--seeds 0 1 2] [--methods bp,kd,fskd,cd,mir] [--set key=value ...]
[--oe-set key=value ...]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from fsmc.config import load_params
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.models.checkpoint import load_checkpoint
from fsmc.runtime import predict_logits
from fsmc.stages import compress, curate_ood, recover, sample_few_shot, teacher
from fsmc.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]


def test_accuracy(path: Path, params) -> tuple[float, float]:
    """Top-1 and worst-class accuracy (%) of the checkpoint at ``path`` on the test split."""
    model, _, _ = load_checkpoint(path)
    test = load_dataset(params.data).test
    predictions = predict_logits(model, to_tensor(test.images, test.pixel_max)).argmax(1).numpy()
    per_class = [float((predictions[test.labels == c] == c).mean()) for c in np.unique(test.labels)]
    return 100 * float((predictions == test.labels).mean()), 100 * min(per_class)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", default="bp,kd,fskd,cd,mir")
    parser.add_argument("--set", action="append", default=[], help="override for both variants")
    parser.add_argument("--oe-set", action="append", default=[], help="override for the +oe variant only (a lever on the plug-in)")
    args = parser.parse_args()
    console = Console(width=140)
    out = Path(tempfile.mkdtemp(prefix="fsmc-plugin-digits-"))
    results: dict[tuple[str, bool], list[tuple[float, float]]] = {}
    for seed in args.seeds:
        seeded = [f"sample_few_shot.seed={seed}", f"recover.seed={seed}", *args.set]
        base = load_params(REPO / "params.yaml", seeded)
        ws = Workspace(out / f"seed{seed}")
        for stage in (sample_few_shot, curate_ood, teacher, compress):
            stage.run(base, ws)
        for method in args.methods.split(","):
            for oe in (False, True):
                variant = [f"recover.method={method}", f"recover.oe={oe}", *(args.oe_set if oe else [])]
                params = load_params(REPO / "params.yaml", [*seeded, *variant])
                recover.run(params, ws)
                results.setdefault((method, oe), []).append(test_accuracy(ws.student_model, params))
            (b_top1, b_worst), (o_top1, o_worst) = results[(method, False)][-1], results[(method, True)][-1]
            console.print(f"seed {seed} {method}: top-1 {b_top1:.2f} -> +oe {o_top1:.2f}, worst class {b_worst:.1f} -> {o_worst:.1f}")
    table = Table(title=f"embedded digits, seeds {args.seeds}: mean over seeds (+oe − base, points)")
    for column in ("method", "top-1 base", "top-1 +oe", "Δ top-1", "worst base", "worst +oe", "Δ worst"):
        table.add_column(column, justify="right")
    for method in args.methods.split(","):
        base_runs, oe_runs = results[(method, False)], results[(method, True)]
        means = [statistics.mean(r[i] for r in runs) for runs in (base_runs, oe_runs) for i in (0, 1)]
        table.add_row(
            method, f"{means[0]:.2f}", f"{means[2]:.2f}", f"{means[2] - means[0]:+.2f}", f"{means[1]:.1f}", f"{means[3]:.1f}", f"{means[3] - means[1]:+.1f}"
        )
    console.print(table)


if __name__ == "__main__":
    main()
