"""``fskd``: few-sample knowledge distillation, a least-squares 1x1 conv after each compressed layer."""

from fsmc.config.declarations import MethodDeclaration

_QAT_GRAPH = "the int8-qat student is a fused, fake-quantized graph"

METHOD = MethodDeclaration(
    name="fskd",
    summary="a 1x1 conv after each compressed layer, solved by least squares on unlabelled images, absorbed",
    paper="Li et al., Few Sample Knowledge Distillation for Efficient Network Compression, CVPR 2020",
    teacher_signal="layer outputs",
    params=("layerwise_ood", "layerwise_ood_weight"),
    cannot_follow={
        "int8-qat": f"fskd solves float conv weights layer by layer, and {_QAT_GRAPH} without them",
        "unstructured": "absorbing fskd's 1x1 conv into a sparse conv makes its weights dense, losing the sparsity",
        "distill": "fskd corrects each pruned layer towards its teacher layer, and a smaller architecture "
        "has no layer-by-layer counterpart in the teacher",
    },
)
