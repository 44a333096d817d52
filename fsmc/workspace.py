"""Where each stage reads and writes, relative to one root (``data/`` for DVC, a run folder for flows)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path


def new_run_folder(base: Path = Path("runs")) -> Path:
    """A fresh folder name for one flow run: ``runs/<UTC time>-<random hex>`` (two runs never share one)."""
    return base / f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Workspace:
    """File layout of one pipeline run."""

    root: Path

    def _p(self, *parts: str) -> Path:
        return Path(self.root, *parts)

    @property
    def run_params(self) -> Path:
        return self._p("params.yaml")

    @property
    def run_record(self) -> Path:
        return self._p("run.json")

    @property
    def onnx_model(self) -> Path:
        return self._p("export", "student.onnx")

    @property
    def onnx_check(self) -> Path:
        return self._p("export", "onnx_check.json")

    @property
    def shipped_model(self) -> Path:
        """The student as shipped: ``model.onnx`` and ``runtime.json`` (written at promotion, after the seal)."""
        return self._p("ship", "model")

    @property
    def shipped_runtime(self) -> Path:
        return self._p("ship", "model", "runtime.json")

    @property
    def ship_report(self) -> Path:
        return self._p("ship", "report.json")

    @property
    def input_sources(self) -> Path:
        return self._p("inputs", "sources.json")

    @property
    def few_shot_manifest(self) -> Path:
        return self._p("few_shot", "manifest.csv")

    @property
    def few_shot_summary(self) -> Path:
        return self._p("few_shot", "summary.json")

    @property
    def ood_manifest(self) -> Path:
        return self._p("ood", "manifest.csv")

    @property
    def ood_summary(self) -> Path:
        return self._p("ood", "summary.json")

    @property
    def validation_report(self) -> Path:
        return self._p("validate", "report.json")

    @property
    def teacher_model(self) -> Path:
        return self._p("teacher", "model.pt")

    @property
    def pruned_model(self) -> Path:
        return self._p("compress", "model.pt")

    @property
    def compress_summary(self) -> Path:
        return self._p("compress", "summary.json")

    @property
    def student_model(self) -> Path:
        return self._p("recover", "model.pt")

    @property
    def recover_summary(self) -> Path:
        return self._p("recover", "summary.json")

    @property
    def metrics(self) -> Path:
        return self._p("evaluate", "metrics.json")

    @property
    def per_class_table(self) -> Path:
        return self._p("evaluate", "per_class.csv")

    @property
    def per_class_chart(self) -> Path:
        return self._p("evaluate", "per_class.png")
