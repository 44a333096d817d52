"""``channel``: structured channel pruning."""

from fsmc.config.declarations import SchemeDeclaration

SCHEME = SchemeDeclaration(
    name="channel",
    summary="structured channel pruning (torch-pruning): importance l1 | l2 | bn-scale | taylor | class-aware, "
    "per layer or global; ResNets: inner channels of each block",
    params=("ratio", "importance", "global_pruning", "round_to", "allocation", "macs_fraction", "calibration_images"),
)
