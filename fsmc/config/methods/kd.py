"""``kd``: Hinton knowledge distillation on the teacher's logits."""

from fsmc.config.declarations import MethodDeclaration

METHOD = MethodDeclaration(
    name="kd",
    summary="Hinton KD: teacher soft targets at temperature T plus the label term",
    paper="Hinton et al., Distilling the Knowledge in a Neural Network, 2015",
    teacher_signal="logits",
    params=("alpha", "temperature"),
)
