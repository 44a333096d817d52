"""``bp``: cross-entropy fine-tuning on the few-shot labels."""

from fsmc.config.declarations import MethodDeclaration

METHOD = MethodDeclaration(
    name="bp",
    summary="cross-entropy fine-tuning on the few-shot labels",
    paper="baseline (e.g. Wang et al., MiR, CVPR 2022)",
    teacher_signal="-",
)
