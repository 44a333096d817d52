"""``none``: no recovery, the compressed model as is."""

from fsmc.config.declarations import MethodDeclaration

METHOD = MethodDeclaration(
    name="none",
    summary="no recovery: the compressed model as is (the baseline; the only choice after int8-ptq)",
    paper="-",
    teacher_signal="-",
)
