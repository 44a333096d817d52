"""The search's Pareto front as people read it: speed-up against the top-1 and worst-class drops, limits drawn."""

from __future__ import annotations

from pathlib import Path

from fsmc.atomic import atomic_write
from fsmc.config import Params
from fsmc.tuning.selection import pareto_front


def pareto_plot(path: Path, rows: list[dict], chosen: dict, params: Params) -> Path:
    """Two panels (top-1 drop, worst-class drop, in points, against the measured speed-up); the front joined, the
    gate's limits and the speed-up target dashed, the chosen candidate circled. Returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=110, sharex=True)
    panels = (("top1", "top1_drop", params.gate.max_top1_drop, "top-1 drop"),
              ("worst_class_acc", "worst_class_drop", params.gate.max_worst_class_drop, "worst-class drop"))
    for axis, (accuracy, drop, limit, label) in zip(axes, panels, strict=True):
        for round_name, marker in (("short", "o"), ("full", "s"), ("long", "D")):
            subset = [r for r in rows if r["round"] == round_name]
            if subset:
                axis.scatter([r["speedup"] for r in subset], [100 * r[drop] for r in subset], marker=marker,
                             alpha=0.8, label=f"{round_name} recovery")
        front = pareto_front(rows, accuracy)
        axis.plot([r["speedup"] for r in front], [100 * r[drop] for r in front], color="grey", lw=1, label="Pareto front")
        axis.scatter([chosen["speedup"]], [100 * chosen[drop]], s=180, facecolors="none", edgecolors="red", label="chosen")
        axis.axhline(100 * limit, color="red", ls="--", lw=1, label="gate limit")
        if params.target.speedup:
            axis.axvline(params.target.speedup, color="black", ls=":", lw=1, label="target speed-up")
        axis.set_xlabel(f"compression speed-up at batch {params.target.batch} (measured)")
        axis.set_ylabel(f"{label} (points)")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper left")
    figure.suptitle("fsmc tune: every candidate, lower and further right is better")
    figure.tight_layout()

    def write(tmp: Path) -> None:
        figure.savefig(tmp, format="png", metadata={"Software": None})

    atomic_write(path, write)
    plt.close(figure)
    return path
