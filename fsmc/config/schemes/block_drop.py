"""``block-drop``: whole residual blocks removed (PRACTISE-style), for depth where width does not pay at batch 1."""

from fsmc.config.declarations import SchemeDeclaration

_LAYERWISE = (
    "{} fits each student layer to the teacher layer at the same place, and with whole blocks removed the "
    "student's layers no longer see the inputs their teacher layers saw"
)

SCHEME = SchemeDeclaration(
    name="block-drop",
    summary="removes compress.ratio of the residual blocks whose output has their input's shape, those whose loss a "
    "fitted 1x1 map best absorbs (pre-pool feature MSE on few-shot + OOD images) per MAC saved; residual nets only",
    params=("ratio", "calibration_images"),
    rules_out={"fskd": _LAYERWISE.format("fskd"), "cd": _LAYERWISE.format("cd")},
)
