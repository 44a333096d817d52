"""How a run reads in MLflow's views: its name in the runs list and its Markdown description (run and version)."""

from __future__ import annotations

from fsmc.config import Params


def run_name(params: Params) -> str:
    """What the run did, readable in the runs list: dataset, teacher, scheme, method."""
    return f"{params.data.dataset} {params.data.teacher} {params.compress.scheme} {params.recover.label}"


def describe_run(params: Params, evaluation: dict) -> str:
    """A reviewer's summary (Markdown) for the run and the registered version: no artifact needs opening."""
    teacher, student = evaluation["teacher"], evaluation["student"]
    minority = ", ".join(evaluation["minority_class_names"])
    return (
        f"**{params.data.teacher}** on **{params.data.dataset}** compressed by **{params.compress.scheme}** "
        f"(ratio {params.compress.ratio}) and recovered by **{params.recover.label}** from "
        f"{sum(evaluation['few_shot_counts'])} shots (k_max {params.sample_few_shot.k_max}, "
        f"rho {params.sample_few_shot.imbalance_ratio}).\n\n"
        f"| | teacher | student | gap |\n|---|---|---|---|\n"
        f"| top-1 % | {100 * teacher['top1']:.2f} | {100 * student['top1']:.2f} | {100 * student['top1_gap']:+.2f} |\n"
        f"| worst class % | {100 * teacher['worst_class_acc']:.2f} | {100 * student['worst_class_acc']:.2f} | "
        f"{100 * student['worst_class_gap']:+.2f} |\n"
        f"| minority ({minority}) % | {100 * teacher['minority_acc']:.2f} | {100 * student['minority_acc']:.2f} | "
        f"{100 * (student['minority_acc'] - teacher['minority_acc']):+.2f} |\n"
        f"| MACs | {teacher['macs']:,} | {student['macs']:,} | x{student['macs'] / teacher['macs']:.3f} |\n"
    )
