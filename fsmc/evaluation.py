"""What compression did to every class: per-class metrics and the teacher-vs-student chart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, recall_score
from sklearn.model_selection import train_test_split

from fsmc.atomic import atomic_write
from fsmc.data.images import ImageSet

# The scalar accuracies classification_metrics returns, and the cost figures beside them: every
# table, row and tracking call that lists a model's metrics takes its names from here.
ACCURACY_METRICS = ("top1", "balanced_acc", "macro_f1", "minority_acc", "worst_class_acc")
COST_METRICS = ("macs", "params", "bytes")


def classification_metrics(labels: np.ndarray, predictions: np.ndarray, num_classes: int, minority: list[int]) -> dict:
    """Top-1, balanced accuracy, macro-F1, per-class accuracy, minority and worst-class accuracy.

    Per-class accuracy is the recall of each class; ``minority_acc`` is its mean
    over the ``minority`` classes (those with the fewest few-shot samples).
    """
    classes = list(range(num_classes))
    per_class = recall_score(labels, predictions, labels=classes, average=None, zero_division=0)
    return {
        "top1": float(accuracy_score(labels, predictions)),
        "balanced_acc": float(balanced_accuracy_score(labels, predictions)),
        "macro_f1": float(f1_score(labels, predictions, labels=classes, average="macro", zero_division=0)),
        "per_class": [float(v) for v in per_class],
        "minority_acc": float(np.mean(per_class[minority])),
        "worst_class_acc": float(per_class.min()),
        "worst_class": int(per_class.argmin()),
    }


def per_class_chart(path: Path, class_names: list[str], teacher: list[float], student: list[float], minority: list[int]) -> None:
    """Grouped bar chart of per-class accuracy, teacher vs student, minority classes marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    positions = np.arange(len(class_names))
    figure, axis = plt.subplots(figsize=(max(6.0, 0.7 * len(class_names)), 3.6), dpi=110)
    axis.bar(positions - 0.2, np.asarray(teacher) * 100, width=0.4, label="teacher", color="#8da0cb")
    axis.bar(positions + 0.2, np.asarray(student) * 100, width=0.4, label="student", color="#fc8d62")
    labels = [f"{name}*" if i in minority else name for i, name in enumerate(class_names)]
    axis.set_xticks(positions, labels)
    axis.set_ylabel("test accuracy (%)")
    axis.set_ylim(0, 105)
    axis.set_title("Per-class accuracy (* = minority classes of the few-shot set)")
    axis.legend(loc="lower right")
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()

    def write(tmp: Path) -> None:
        # Agg output carries no timestamp metadata when Software/Date are cleared: byte-stable reruns.
        figure.savefig(tmp, format="png", metadata={"Software": None})

    atomic_write(path, write)
    plt.close(figure)


def stratified_subset(test: ImageSet, size: int) -> ImageSet:
    """A stratified subset of ``size`` test images (seed 0, original order), or all when ``size`` is 0."""
    if size <= 0 or size >= len(test):
        return test
    chosen, _ = train_test_split(np.arange(len(test)), train_size=size, random_state=0, stratify=test.labels)
    return test.subset(np.sort(chosen))
