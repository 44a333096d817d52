"""What each pipeline stage reads, writes and runs: the one declaration the stage cache and ``dvc.yaml`` derive from.

File names are :class:`fsmc.workspace.Workspace` attribute names, so the paths live in one place
(``Workspace``), the stage lists in another (here); ``dvc.yaml`` is rendered from both
(:mod:`fsmc.dvc_yaml`) and the stage cache keys on the same lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from fsmc.code_closure import closure_files


@dataclass(frozen=True)
class StageIO:
    """One stage's params sections, input files and output files (``Workspace`` attribute names)."""

    sections: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


# In the order `dvc repro` lists them. record_inputs is not stage-cached: it hashes raw inputs every run.
STAGE_IO: dict[str, StageIO] = {
    "record_inputs": StageIO(("data",), (), ("input_sources",)),
    "sample_few_shot": StageIO(("data", "sample_few_shot"), ("input_sources",), ("few_shot_manifest", "few_shot_summary")),
    "curate_ood": StageIO(
        ("data", "sample_few_shot", "curate_ood"),
        ("input_sources", "few_shot_summary", "teacher_model"),
        ("ood_manifest", "ood_summary"),
    ),
    "validate": StageIO(("data", "sample_few_shot"), ("few_shot_manifest", "few_shot_summary", "ood_manifest"), ("validation_report",)),
    "teacher": StageIO(("data", "teacher"), ("input_sources",), ("teacher_model",)),
    "compress": StageIO(
        ("data", "compress"),
        ("teacher_model", "few_shot_manifest", "ood_manifest", "validation_report"),
        ("pruned_model", "compress_summary"),
    ),
    "recover": StageIO(
        ("data", "recover"),
        ("teacher_model", "pruned_model", "few_shot_manifest", "ood_manifest", "validation_report"),
        ("student_model", "recover_summary"),
    ),
    "evaluate": StageIO(
        ("data", "evaluate"),
        ("teacher_model", "student_model", "compress_summary", "few_shot_summary"),
        ("metrics", "per_class_table", "per_class_chart"),
    ),
}


def stage_modules(stage: str) -> tuple[str, ...]:
    """The modules whose code stage ``stage`` runs: its own and the DVC entry point's (``python -m fsmc.stages``)."""
    if stage not in STAGE_IO:
        raise KeyError(stage)
    return (f"fsmc.stages.{stage}", "fsmc.stages.__main__")


def stage_code(stage: str) -> list[str]:
    """The library files stage ``stage`` depends on (``fsmc/...``): the import closure of :func:`stage_modules`.

    The stage cache keys on these files' bytes and ``dvc.yaml`` lists them as the stage's deps, so the flow
    and ``dvc repro`` re-run exactly the stages whose code changed (and those whose inputs then changed).
    """
    return closure_files(*stage_modules(stage))
