"""Aggregate cell rows over seeds into the paper's table; write results.csv / results.json atomically."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from fsmc.atomic import write_json, write_text

# (column, row key, scale): accuracies in %, cost as is.
SUMMARY_METRICS = (
    ("top1", "student_top1", 100),
    ("balanced", "student_balanced_acc", 100),
    ("minority", "student_minority_acc", 100),
    ("head", "student_head_acc", 100),
    ("worst_class", "student_worst_class_acc", 100),
    ("top1_gap", "top1_gap", 100),
    ("minority_gap", "minority_gap", 100),
    ("worst_class_gap", "worst_class_gap", 100),
    ("macs", "student_macs", 1),
    ("params", "student_params", 1),
    ("latency_ms", "student_ms", 1),
    ("speedup", "speedup", 1),
    ("latency_b1_ms", "student_ms_b1", 1),
    ("speedup_b1", "speedup_b1", 1),
    ("deployment_speedup_b1", "deployment_speedup_b1", 1),
    ("wall_s", "wall_seconds", 1),
)
TEACHER_METRICS = (("top1", "teacher_top1"), ("balanced", "teacher_balanced_acc"), ("minority", "teacher_minority_acc"),
                   ("head", "teacher_head_acc"), ("worst_class", "teacher_worst_class_acc"), ("macs", "teacher_macs"),
                   ("params", "teacher_params"), ("latency_ms", "teacher_ms"))


def with_gaps(row: dict) -> dict:
    """``row`` plus the student-minus-teacher gaps (fractions; negative = the student is worse)."""
    return {
        **row,
        "top1_gap": row["student_top1"] - row["teacher_top1"],
        "minority_gap": row["student_minority_acc"] - row["teacher_minority_acc"],
        "worst_class_gap": row["student_worst_class_acc"] - row["teacher_worst_class_acc"],
    }


def _mean_std(values: list[float]) -> tuple[float, float]:
    array = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if array.size == 0:
        return float("nan"), float("nan")
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def summarize(rows: list[dict], axes: list[str], averaged: str = "seed") -> list[dict]:
    """One summary row per combination of ``axes`` other than ``averaged``: mean and std of each metric."""
    keys = [axis for axis in axes if axis != averaged]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row["labels"][k] for k in keys), []).append(row)
    summary = []
    for group_key, members in groups.items():
        entry: dict = {**dict(zip(keys, group_key, strict=True)), "seeds": len(members)}
        for column, key, scale in SUMMARY_METRICS:
            mean, std = _mean_std([m.get(key) for m in members])
            entry[column], entry[f"{column}_std"] = mean * scale, std * scale
        # The setting's raw values (axis labels keep their own columns when an axis has the same name).
        for key in ("teacher", "scheme", "method", "k_max", "imbalance_ratio"):
            entry.setdefault(key, members[0][key])
        entry["oe_on"] = members[0]["oe"]
        summary.append(entry)
    return summary


def teachers(rows: list[dict]) -> list[dict]:
    """One row per teacher (its test metrics do not depend on the cell)."""
    seen: dict[str, dict] = {}
    for row in rows:
        if row["teacher"] not in seen:
            seen[row["teacher"]] = {"teacher": row["teacher"], **{c: row.get(k) for c, k in TEACHER_METRICS}}
    for entry in seen.values():
        for column in ("top1", "balanced", "minority", "head", "worst_class"):
            entry[column] = 100 * entry[column]
    return list(seen.values())


def write_results(folder: Path, preset: str, rows: list[dict], summary: list[dict], teacher_rows: list[dict], skipped: list) -> dict[str, Path]:
    """``results.json`` (everything) and ``results.csv`` (the summary table), each written atomically."""
    paths = {"json": folder / "results.json", "csv": folder / "results.csv"}
    write_json(paths["json"], {"preset": preset, "teachers": teacher_rows, "summary": summary, "cells": rows,
                               "skipped": [{"labels": labels, "reason": reason} for labels, reason in skipped]})
    table = io.StringIO()
    columns = list(summary[0])
    writer = csv.DictWriter(table, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for entry in summary:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in entry.items()})
    write_text(paths["csv"], table.getvalue())
    return paths
