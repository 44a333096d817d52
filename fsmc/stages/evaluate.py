"""Stage ``evaluate``: teacher vs student on the test split, per class, with a chart."""

from __future__ import annotations

import csv
import io

from fsmc.atomic import read_json, write_json, write_text
from fsmc.config import Params
from fsmc.data.images import to_tensor
from fsmc.data.sampling import minority_classes
from fsmc.data.sources import load_dataset
from fsmc.evaluation import classification_metrics, per_class_chart, stratified_subset
from fsmc.models.checkpoint import load_checkpoint
from fsmc.runtime import predict_logits
from fsmc.teacher_outputs import images_key, teacher_outputs
from fsmc.workspace import Workspace


def run(params: Params, ws: Workspace) -> dict:
    """Write ``evaluate/metrics.json``, ``per_class.csv`` and ``per_class.png``; return the metrics."""
    dataset = load_dataset(params.data)
    few_shot = read_json(ws.few_shot_summary)
    cost = read_json(ws.compress_summary)
    counts, ranks = dict(enumerate(few_shot["counts"])), dict(enumerate(few_shot["ranks"]))
    minority = minority_classes(counts, ranks, params.evaluate.minority_classes)
    test = stratified_subset(dataset.test, params.evaluate.max_test_images)
    images, labels = to_tensor(test.images, test.pixel_max), test.labels
    results = {}
    for role, path in (("teacher", ws.teacher_model), ("student", ws.student_model)):
        model, _, _ = load_checkpoint(path)
        if role == "teacher":  # the same teacher on the same test images: computed once across runs
            logits = teacher_outputs(path, model, images, images_key(test.hashes()))[0]["logits"]
        else:
            logits = predict_logits(model, images)
        predictions = logits.argmax(dim=1).numpy()
        results[role] = {
            **classification_metrics(labels, predictions, dataset.num_classes, minority),
            **cost[role],
        }
        # Recovery can change the file (int8-qat converts after training): size what is shipped.
        results[role]["bytes"] = path.stat().st_size
    teacher, student = results["teacher"], results["student"]
    student["per_class_gap"] = [s - t for s, t in zip(student["per_class"], teacher["per_class"])]
    student["top1_gap"] = student["top1"] - teacher["top1"]
    student["worst_class_gap"] = student["worst_class_acc"] - teacher["worst_class_acc"]
    metrics = {
        "classes": list(dataset.classes),
        "minority_classes": minority,
        "minority_class_names": [dataset.classes[c] for c in minority],
        "few_shot_counts": few_shot["counts"],
        "test_size": int(len(labels)),
        "teacher": teacher,
        "student": student,
    }
    write_json(ws.metrics, metrics)
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")  # quotes class names that hold commas
    writer.writerow(["class", "name", "shots", "teacher_acc", "student_acc", "gap"])
    for c, name in enumerate(dataset.classes):
        writer.writerow(
            [c, name, few_shot["counts"][c]]
            + [f"{v:.6f}" for v in (teacher["per_class"][c], student["per_class"][c], student["per_class_gap"][c])]
        )
    write_text(ws.per_class_table, table.getvalue())
    per_class_chart(ws.per_class_chart, list(dataset.classes), teacher["per_class"], student["per_class"], minority)
    return metrics
