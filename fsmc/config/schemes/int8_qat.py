"""``int8-qat``: int8 quantization-aware training during recovery."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fsmc.config.declarations import SchemeDeclaration

if TYPE_CHECKING:
    from fsmc.config.schema import Params


def _trains_in_float32(params: Params) -> str | None:
    """Fake quantization observes float32 only."""
    if params.compress.scheme == "int8-qat" and params.recover.precision == "bf16":
        return (
            "recover.precision=bf16 cannot train compress.scheme=int8-qat: fake quantization observes float32 only. "
            "Use precision auto or fp32 (int8-qat then trains in fp32)."
        )
    return None


SCHEME = SchemeDeclaration(
    name="int8-qat",
    summary="int8 quantization-aware training: recovery trains through fake quantization, then converts",
    rules_out={
        "none": "int8-qat is quantization-aware training and needs a training method; for int8 without training use "
        "scheme=int8-ptq",
    },
    rules=(_trains_in_float32,),
)
