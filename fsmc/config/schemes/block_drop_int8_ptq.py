"""``block-drop+int8-ptq``: whole blocks dropped, recovery in float, then post-training int8 quantization.

Depth and int8 are the two levers that pay at batch 1 on an overhead-bound network (issue 32): width pruning
does not, so this is the composition ``fsmc tune`` reaches for when a batch-1 speed-up is asked.
"""

from fsmc.config.declarations import SchemeDeclaration
from fsmc.config.schemes.block_drop import SCHEME as BLOCK_DROP

SCHEME = SchemeDeclaration(
    name="block-drop+int8-ptq",
    summary="residual blocks removed as scheme=block-drop, recovery by the method in float, then int8 PTQ (as "
    "scheme=int8-ptq) of the recovered student, calibrated on few-shot + OOD images: what ships is shallower and int8",
    params=BLOCK_DROP.params,
    rules_out=BLOCK_DROP.rules_out,
)
