"""``channel+int8-ptq``: channel pruning, recovery in float, then post-training int8 quantization of the recovered student."""

from fsmc.config.declarations import SchemeDeclaration

SCHEME = SchemeDeclaration(
    name="channel+int8-ptq",
    summary="channel pruning as scheme=channel, recovery by the method in float, then int8 PTQ (as scheme=int8-ptq) "
    "of the recovered student, calibrated on few-shot + OOD images: what ships is pruned and int8",
    params=("ratio", "importance", "global_pruning", "round_to", "allocation", "macs_fraction", "calibration_images"),
)
