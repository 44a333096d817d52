"""``distill``: a smaller architecture, from the teacher or scratch."""

from fsmc.config.declarations import SchemeDeclaration

SCHEME = SchemeDeclaration(
    name="distill",
    summary="a smaller architecture (ResNet-56 -> ResNet-20, small-cnn -> small-cnn-half, torchvision ResNet-34 -> "
    "ResNet-18, ...) from the teacher or scratch",
    params=("student", "student_init"),
)
