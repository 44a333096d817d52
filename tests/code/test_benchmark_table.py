"""`fsmc benchmark`'s terminal table: readable in an 80-column terminal, every number whole."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from flows.benchmark_cli import print_table


def _result(methods: list[str]) -> dict:
    teacher = {"teacher": "resnet56-jpeg", "top1": 89.64, "balanced": 89.64, "minority": 93.57, "worst_class": 78.6,
               "macs": 125_485_706, "params": 855_770, "latency_ms": 41.37}
    summary = []
    for i, method in enumerate(methods):
        entry = {"method": method, "oe": i % 2 == 1, "seed": 0, "seeds": 3, "teacher": "resnet56-jpeg",
                 "macs": 63_245_066, "latency_ms": 27.91, "speedup": 1.48, "speedup_b1": 1.27}
        for key, value in (("top1", 87.63), ("minority", 89.04), ("worst_class", 76.0)):
            entry[key], entry[f"{key}_std"] = value - i, 0.06 + i
            entry[f"{key}_gap"], entry[f"{key}_gap_std"] = value - i - 90, 0.25
        summary.append(entry)
    return {"preset": "paper-cifar10", "teachers": [teacher], "summary": summary, "cells": 12, "reused_cells": 0,
            "wall_seconds": 2500.0, "results_csv": "reports/paper-cifar10/results.csv", "skipped": [],
            "results_json": "reports/paper-cifar10/results.json", "report": "reports/paper-cifar10/report.html",
            "mlflow_run_id": "0" * 32}


@pytest.mark.parametrize("width", [80, 200])
def test_every_number_is_whole_at_any_terminal_width(width):
    console = Console(width=width, record=True, color_system=None)
    result = _result(["bp", "bp+oe", "mir", "mir+oe"])
    print_table(result, ["method", "oe", "seed"], console)
    text = console.export_text()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    for entry in result["summary"]:
        assert f"{entry['top1']:.1f}±{entry['top1_std']:.1f}" in text
        assert f"{entry['worst_class_gap']:.1f}±{entry['worst_class_gap_std']:.1f}" in text
    assert "125.5 M" in text and re.search(r"x1\.48", text) and re.search(r"x1\.27", text)
