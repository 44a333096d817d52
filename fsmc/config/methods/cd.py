"""``cd``: cross distillation, layer-wise correction and imitation, then KD fine-tuning."""

from fsmc.config.declarations import MethodDeclaration

METHOD = MethodDeclaration(
    name="cd",
    summary="cross distillation: layer-wise mu * correction + (1 - mu) * imitation, then KD fine-tuning",
    paper="Bai et al., Few Shot Network Compression via Cross Distillation, AAAI 2020",
    teacher_signal="layer inputs/outputs + logits",
    params=("mu", "alpha", "temperature", "layerwise_ood", "layerwise_ood_weight"),
    cannot_follow={
        "int8-qat": "cd regresses float conv outputs layer by layer, and the int8-qat student is a fused, "
        "fake-quantized graph without them",
        "distill": "cd regresses each student layer on its teacher layer, and a smaller architecture "
        "has no layer-by-layer counterpart in the teacher",
    },
)
