"""``int8-ptq``: post-training static int8 quantization."""

from fsmc.config.declarations import SchemeDeclaration

SCHEME = SchemeDeclaration(
    name="int8-ptq",
    summary="post-training static int8 quantization, FX graph mode, x86 backend, calibrated on few-shot + OOD images",
    params=("calibration_images",),
    only_methods=("none",),
    only_reason="int8-ptq yields an integer model with no gradients or float weights to adjust; "
    "recover with scheme=int8-qat (quantization-aware training) or use method=none",
)
