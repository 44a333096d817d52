"""The compression schemes' declarations, in the order ``fsmc methods`` lists them (one module each)."""

from __future__ import annotations

from fsmc.config.declarations import SchemeDeclaration
from fsmc.config.schemes import block_drop, block_drop_int8_ptq, channel, channel_int8_ptq, distill, int8_ptq, int8_qat, unstructured

SCHEME_DECLARATIONS: dict[str, SchemeDeclaration] = {
    s.SCHEME.name: s.SCHEME for s in (channel, unstructured, int8_ptq, int8_qat, distill, channel_int8_ptq, block_drop, block_drop_int8_ptq)
}
