"""``mir``: Mimicking then Replacing, the teacher's pre-pool feature map under its frozen head."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fsmc.config.catalogue import NARROW_STUDENTS
from fsmc.config.declarations import MethodDeclaration

if TYPE_CHECKING:
    from fsmc.config.schema import Params


def _needs_the_teachers_feature_width(params: Params) -> str | None:
    """mir reuses the teacher's head: a distillation student must keep the teacher's feature width."""
    pair = (params.data.teacher, params.compress.resolved_student(params.data.teacher))
    if params.compress.scheme != "distill" or pair not in NARROW_STUDENTS:
        return None
    return (
        f"recover.method='mir' does not apply to compress.scheme='distill' with student {pair[1]!r}: mir reuses the "
        f"teacher's classifier, which needs the student's feature width to equal the teacher's, and {pair[1]!r} is "
        f"narrower than {pair[0]!r}. Use method=kd (or bp, none) with it."
    )


METHOD = MethodDeclaration(
    name="mir",
    summary="mimic the teacher's feature map before global pooling (MSE, no labels) under its frozen head",
    paper="Wang et al., Compressing Models with Few Samples: Mimicking then Replacing, CVPR 2022",
    teacher_signal="pre-pool features",
    params=("joint_kd", "temperature"),
    learning_rate=0.1,
    needs_features=True,
    cannot_follow={
        "int8-qat": "mir mimics the feature map before pooling, and the int8-qat student is a fused, "
        "fake-quantized graph that returns only logits",
    },
    rules=(_needs_the_teachers_feature_width,),
)
