"""The benchmark's HTML report: one self-contained page (figures inlined as PNG) people would rather look at.

Figures: accuracy vs imbalance ratio per method, per-class accuracy of the
teacher and the students of the headline setting, per class what the OOD plug-in
changed (+oe − base, per method), minority vs head accuracy,
and accuracy vs CPU latency and MACs. Tables: the teacher and the seed-averaged
summary, as in results.csv.
"""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from jinja2 import Environment  # noqa: E402

from fsmc.atomic import write_text  # noqa: E402

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fsmc benchmark: {{ preset }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.8rem; margin: 1rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
.figures { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
.figures img { width: 100%; border: 1px solid #eee; }
.figures figure.wide { grid-column: span 2; }
.headline { background: #fff7d6; }
.note { color: #555; }
</style></head><body>
<h1>fsmc benchmark: {{ preset }}</h1>
<p class="note">{{ summary }}. {{ cells }} cells ({{ reused }} reused from the stage cache), {{ skipped }} combinations left out.
Accuracies in %, mean ± std over seeds; gaps are student − teacher.</p>
<h2>Teachers</h2>
<table><tr>{% for c in teacher_columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in teacher_rows %}<tr>{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}</table>
<h2>Students</h2>
<div class="scroll"><table><tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row, headline in rows %}<tr{% if headline %} class="headline"{% endif %}>{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}</table></div>
<h2>Figures</h2>
<div class="figures">{% for title, png in figures %}<figure{% if "per-class" in title %} class="wide"{% endif %}>\
<img alt="{{ title }}" src="data:image/png;base64,{{ png }}"><figcaption>{{ title }}</figcaption></figure>{% endfor %}</div>
</body></html>
"""


def _png(figure: plt.Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _label(entry: dict, axes: list[str]) -> str:
    return " ".join(entry[a] for a in axes if a not in ("budget", "seed"))


def _accuracy_vs_rho(summary: list[dict], axes: list[str]) -> str:
    figure, axis = plt.subplots(figsize=(6, 4))
    series: dict[str, list[tuple[float, float, float]]] = {}
    for entry in summary:
        series.setdefault(_label(entry, axes), []).append((entry["imbalance_ratio"], entry["top1"], entry["top1_std"]))
    for label, points in sorted(series.items()):
        points.sort()
        x, y, err = zip(*points, strict=True)
        axis.errorbar(x, y, yerr=err, marker="o", capsize=3, label=label, linestyle="--" if "base" in label else "-")
    axis.set(xscale="log", xlabel="imbalance ratio rho (1 = balanced)", ylabel="student top-1 %", title="accuracy vs imbalance")
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
    return _png(figure)


def _per_class(rows: list[dict], headline: dict[str, str], axes: list[str]) -> str:
    chosen = [r for r in rows if all(r["labels"].get(k) == v for k, v in headline.items() if k not in ("method", "oe", "scheme"))] or rows
    classes = chosen[0]["classes"]
    students: dict[str, list[list[float]]] = {}
    for row in chosen:
        students.setdefault(_label(row["labels"], axes), []).append(row["student_per_class"])
    width = 0.8 / (len(students) + 1)
    figure, axis = plt.subplots(figsize=(max(10, 0.25 * len(classes) * (len(students) + 1)), 4))
    x = np.arange(len(classes))
    axis.bar(x, 100 * np.asarray(chosen[0]["teacher_per_class"]), width, label="teacher", color="black")
    for i, (label, values) in enumerate(sorted(students.items()), start=1):
        axis.bar(x + i * width, 100 * np.mean(values, axis=0), width, label=label)
    minority = set(chosen[0]["minority_classes"])
    axis.set_xticks(x + 0.4 - width / 2, [f"{c}*" if c in minority else c for c in classes], rotation=45, ha="right", fontsize=7)
    axis.set(ylabel="test accuracy %", title="per class, teacher vs students (* = minority)")
    axis.legend(fontsize=6, ncol=2)
    return _png(figure)


def _oe_gain_per_class(rows: list[dict], headline: dict[str, str]) -> str | None:
    """Per class, +oe minus base (mean over seeds) for each method of the headline budget: the plug-in's fairness at a glance."""
    chosen = [r for r in rows if all(r["labels"].get(k) == v for k, v in headline.items() if k not in ("method", "oe", "scheme"))] or rows
    by_variant: dict[tuple, dict[str, list[list[float]]]] = {}
    for row in chosen:
        if "oe" not in row["labels"]:
            return None
        key = tuple((k, v) for k, v in row["labels"].items() if k not in ("oe", "seed", "budget"))
        by_variant.setdefault(key, {}).setdefault(row["labels"]["oe"], []).append(row["student_per_class"])
    gains = {
        " ".join(v for _, v in key): 100 * (np.mean(pair["+oe"], axis=0) - np.mean(pair["base"], axis=0))
        for key, pair in by_variant.items()
        if "+oe" in pair and "base" in pair
    }
    if not gains:
        return None
    classes, minority = chosen[0]["classes"], set(chosen[0]["minority_classes"])
    width = 0.8 / len(gains)
    figure, axis = plt.subplots(figsize=(max(10, 0.25 * len(classes) * len(gains)), 4))
    x = np.arange(len(classes))
    for i, (label, gain) in enumerate(sorted(gains.items())):
        axis.bar(x + i * width, gain, width, label=label)
    axis.axhline(0, color="black", linewidth=0.8)
    axis.set_xticks(x + 0.4 - width / 2, [f"{c}*" if c in minority else c for c in classes], rotation=45, ha="right", fontsize=7)
    axis.set(ylabel="+oe − base, points", title="what the OOD plug-in changes per class (headline budget; * = minority)")
    axis.legend(fontsize=6, ncol=2)
    return _png(figure)


def _minority_vs_head(summary: list[dict], teacher_rows: list[dict], axes: list[str]) -> str:
    figure, axis = plt.subplots(figsize=(6, 4))
    for entry in summary:
        axis.scatter(entry["head"], entry["minority"], marker="o" if entry["oe_on"] else "x")
        axis.annotate(f"{_label(entry, axes)} {entry['budget']}" if "budget" in entry else _label(entry, axes), (entry["head"], entry["minority"]), fontsize=6)
    for teacher in teacher_rows:
        axis.scatter(teacher["head"], teacher["minority"], marker="*", s=150, color="black", label=f"teacher {teacher['teacher']}")
    low = min(*(e["minority"] for e in summary), *(e["head"] for e in summary))
    axis.plot([low, 100], [low, 100], color="grey", linewidth=0.5)
    axis.set(xlabel="head-class accuracy %", ylabel="minority-class accuracy %", title="minority vs head (o: +oe, x: base)")
    axis.legend(fontsize=7)
    return _png(figure)


def _accuracy_vs_cost(summary: list[dict], teacher_rows: list[dict], axes: list[str]) -> str:
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
    for entry in summary:
        for axis, key in ((left, "latency_ms"), (right, "macs")):
            if not math.isnan(entry[key]):
                axis.scatter(entry[key], entry["top1"])
                axis.annotate(_label(entry, axes), (entry[key], entry["top1"]), fontsize=6)
    for teacher in teacher_rows:
        for axis, key in ((left, "latency_ms"), (right, "macs")):
            if teacher.get(key) is not None:
                axis.scatter(teacher[key], teacher["top1"], marker="*", s=150, color="black")
    left.set(xlabel="latency ms at gate.latency_batch, in the runtime the student ships in", ylabel="student top-1 %", title="accuracy vs latency")
    right.set(xlabel="MACs", title="accuracy vs MACs (* = teacher)")
    return _png(figure)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:,.2f}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)  # the template escapes


def write_report(path: Path, preset: dict, rows: list[dict], summary: list[dict], teacher_rows: list[dict], skipped: int) -> Path:
    """Write the self-contained HTML report to ``path`` (atomically) and return it."""
    axes = preset["axes"]
    headline = preset["headline"]
    shown = [a for a in axes if a != "seed"]
    metrics = ("top1", "balanced", "minority", "worst_class", "top1_gap", "minority_gap", "worst_class_gap")
    cost = ("macs", "params", "latency_ms", "speedup", "latency_b1_ms", "speedup_b1", "wall_s")
    columns = [*shown, "seeds", *metrics, *cost]
    table_rows = []
    for entry in summary:
        cells = [_cell(entry[a]) for a in shown] + [str(entry["seeds"])]
        cells += [f"{entry[m]:.2f} ± {entry[m + '_std']:.2f}" if not math.isnan(entry[m]) else "–" for m in metrics]
        cells += [_cell(entry.get(c, float("nan"))) for c in cost]
        table_rows.append((cells, all(entry.get(k) == v for k, v in headline.items())))
    teacher_columns = ["teacher", "top1", "balanced", "minority", "head", "worst_class", "macs", "params", "latency_ms"]
    figures = [
        ("student top-1 vs imbalance ratio, per method", _accuracy_vs_rho(summary, shown)),
        ("per-class accuracy, teacher vs students (headline budget)", _per_class(rows, headline, shown)),
        ("per-class accuracy, +oe minus base per method (headline budget)", _oe_gain_per_class(rows, headline)),
        ("minority vs head accuracy", _minority_vs_head(summary, teacher_rows, shown)),
        ("accuracy vs CPU latency and MACs", _accuracy_vs_cost(summary, teacher_rows, shown)),
    ]
    figures = [(title, png) for title, png in figures if png is not None]  # presets without an oe axis have no gain chart
    page = Environment(autoescape=True).from_string(_PAGE).render(
        preset=preset["name"], summary=preset["summary"], cells=len(rows), reused=sum(r["all_reused"] for r in rows),
        skipped=skipped, columns=columns, rows=table_rows, teacher_columns=teacher_columns,
        teacher_rows=[[_cell(t.get(c)) if t.get(c) is not None else "–" for c in teacher_columns] for t in teacher_rows],
        figures=figures,
    )
    write_text(path, page)
    return path
