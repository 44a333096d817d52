"""The catalogue of names the configuration accepts, and which combinations apply (no torch, no I/O).

Datasets, zoo teachers, the prefixes of a user's own teacher, OOD pools, compression
schemes, recovery methods, distillation students per teacher, and why a recovery
method cannot follow a scheme. The schema (:mod:`fsmc.config.schema`) and the checks
(:mod:`fsmc.config.checks`) read these; so do the CLI's listings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DATASETS = ("digits", "cifar10")
TEACHERS = {
    "digits": ("digits-cnn",),
    "cifar10": ("resnet20", "resnet32", "resnet44", "resnet56", "resnet20-jpeg", "resnet56-jpeg"),
}
# A user's own classifier: "torchvision:NAME" plus a state-dict file (data.teacher_weights), on any dataset.
TORCHVISION_PREFIX = "torchvision:"
TORCHVISION_TEACHERS = (
    "resnet18", "resnet34", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0",
)
# A timm architecture (timm is an optional dependency): "timm:NAME" plus a state-dict file.
TIMM_PREFIX = "timm:"
TIMM_NAME_PATTERN = re.compile(r"^timm:[A-Za-z0-9_.]+$")
# A user's own network: "module:PKG.MODULE:FUNCTION" (a function returning the untrained nn.Module) plus a state dict.
MODULE_PREFIX = "module:"
MODULE_TARGET_PATTERN = re.compile(r"^module:[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$")
# A model in the MLflow registry that fsmc registered: models:/NAME/VERSION or models:/NAME@ALIAS. `fsmc run`
# fetches its fsmc checkpoint (weights only) before the pipeline; the pure stages then read that file.
REGISTRY_PREFIX = "models:/"
REGISTRY_URI_PATTERN = re.compile(r"^models:/[^/@]+(/[0-9]+|@[A-Za-z0-9_\-]+)$")
# A name fsmc registers a model under: what a models:/NAME/VERSION URI can carry.
REGISTERED_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
# An fsmc checkpoint (a student fsmc wrote, say) as the teacher of the next round: data.teacher_weights=PATH.
CHECKPOINT_TEACHER = "checkpoint"
IMAGENET_NORMALIZATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# The OOD pool each dataset uses with ood_pool=auto; "folder:PATH" names a user's image folder.
DEFAULT_OOD_POOLS = {"digits": "photo-patches", "cifar10": "tinyimagenet"}
OOD_POOLS = ("auto", "photo-patches", "tinyimagenet")
PROFILES = ("exp", "step")
# Compression schemes, one line each for `fsmc methods` (their code: fsmc.compress.schemes.SCHEMES).
SCHEME_SUMMARIES = {
    "channel": "structured channel pruning (torch-pruning): importance l1 | l2 | bn-scale | taylor | class-aware, "
    "per layer or global; ResNets: inner channels of each block",
    "unstructured": "magnitude pruning of single weights (torch.nn.utils.prune), per layer or global; "
    "the zeros stay zero through recovery",
    "int8-ptq": "post-training static int8 quantization, FX graph mode, x86 backend, calibrated on few-shot + OOD images",
    "int8-qat": "int8 quantization-aware training: recovery trains through fake quantization, then converts",
    "distill": "a smaller architecture (ResNet-56 -> ResNet-20, small-cnn -> small-cnn-half, torchvision ResNet-34 -> "
    "ResNet-18, ...) from the teacher or scratch",
}
SCHEMES = tuple(SCHEME_SUMMARIES)
# The channel-importance criteria of scheme=channel.
IMPORTANCES = ("l1", "l2", "bn-scale", "taylor", "class-aware")
STUDENT_INITS = ("teacher", "scratch")


@dataclass(frozen=True)
class MethodCard:
    """How ``fsmc methods`` describes a recovery method; its code lives in ``fsmc.recover.methods.<name>``."""

    summary: str
    paper: str
    teacher_signal: str  # what of the teacher it learns from


# Kept here, with no torch import, so that `fsmc methods` lists them in a fraction of a second.
METHOD_CARDS = {
    "none": MethodCard(
        summary="no recovery: the compressed model as is (the baseline; the only choice after int8-ptq)",
        paper="-",
        teacher_signal="-",
    ),
    "bp": MethodCard(
        summary="cross-entropy fine-tuning on the few-shot labels",
        paper="baseline (e.g. Wang et al., MiR, CVPR 2022)",
        teacher_signal="-",
    ),
    "kd": MethodCard(
        summary="Hinton KD: teacher soft targets at temperature T plus the label term",
        paper="Hinton et al., Distilling the Knowledge in a Neural Network, 2015",
        teacher_signal="logits",
    ),
    "fskd": MethodCard(
        summary="a 1x1 conv after each compressed layer, solved by least squares on unlabelled images, absorbed",
        paper="Li et al., Few Sample Knowledge Distillation for Efficient Network Compression, CVPR 2020",
        teacher_signal="layer outputs",
    ),
    "cd": MethodCard(
        summary="cross distillation: layer-wise mu * correction + (1 - mu) * imitation, then KD fine-tuning",
        paper="Bai et al., Few Shot Network Compression via Cross Distillation, AAAI 2020",
        teacher_signal="layer inputs/outputs + logits",
    ),
    "mir": MethodCard(
        summary="mimic the teacher's feature map before global pooling (MSE, no labels) under its frozen head",
        paper="Wang et al., Compressing Models with Few Samples: Mimicking then Replacing, CVPR 2022",
        teacher_signal="pre-pool features",
    ),
}
# Recovery methods (fsmc.recover.methods); the OE-FSMC plug-in is recover.oe on any of them.
RECOVERY_METHODS = tuple(METHOD_CARDS)
EARLY_STOPPING = ("auto", "on", "off")
PRECISIONS = ("auto", "fp32", "bf16")
# Smaller students of scheme=distill, per teacher; the first is what student=auto picks.
DISTILL_STUDENTS = {
    "resnet56": ("resnet20", "resnet32", "resnet44"),
    "resnet56-jpeg": ("resnet20", "resnet32", "resnet44"),
    "resnet44": ("resnet20", "resnet32"),
    "resnet32": ("resnet20",),
    "digits-cnn": ("small-cnn-half",),
    "small-cnn": ("small-cnn-half",),
    "torchvision:resnet34": ("torchvision:resnet18",),
    "torchvision:resnet50": ("torchvision:resnet18", "torchvision:resnet34"),
    "torchvision:mobilenet_v3_large": ("torchvision:mobilenet_v3_small",),
}
# (teacher, student) pairs whose student's feature width differs from the teacher's: mir cannot reuse the teacher's head.
NARROW_STUDENTS = {
    ("digits-cnn", "small-cnn-half"),
    ("small-cnn", "small-cnn-half"),
    ("torchvision:resnet50", "torchvision:resnet18"),
    ("torchvision:resnet50", "torchvision:resnet34"),
    ("torchvision:mobilenet_v3_large", "torchvision:mobilenet_v3_small"),
}
# (teacher, student) pairs of other block types or layouts: the student cannot start as a copy of teacher blocks.
SCRATCH_ONLY_STUDENTS = {
    ("torchvision:resnet50", "torchvision:resnet18"),
    ("torchvision:resnet50", "torchvision:resnet34"),
    ("torchvision:mobilenet_v3_large", "torchvision:mobilenet_v3_small"),
}
_QAT_GRAPH = "the int8-qat student is a fused, fake-quantized graph"
# Why a recovery method cannot follow a compression scheme: (scheme, method) -> reason.
INAPPLICABLE = {
    **{
        ("int8-ptq", m): "int8-ptq yields an integer model with no gradients or float weights to adjust; "
        "recover with scheme=int8-qat (quantization-aware training) or use method=none"
        for m in ("bp", "kd", "fskd", "cd", "mir")
    },
    ("int8-qat", "none"): "int8-qat is quantization-aware training and needs a training method; "
    "for int8 without training use scheme=int8-ptq",
    ("int8-qat", "fskd"): f"fskd solves float conv weights layer by layer, and {_QAT_GRAPH} without them",
    ("int8-qat", "cd"): f"cd regresses float conv outputs layer by layer, and {_QAT_GRAPH} without them",
    ("int8-qat", "mir"): f"mir mimics the feature map before pooling, and {_QAT_GRAPH} that returns only logits",
    ("unstructured", "fskd"): "absorbing fskd's 1x1 conv into a sparse conv makes its weights dense, losing the sparsity",
    ("distill", "fskd"): "fskd corrects each pruned layer towards its teacher layer, and a smaller architecture "
    "has no layer-by-layer counterpart in the teacher",
    ("distill", "cd"): "cd regresses each student layer on its teacher layer, and a smaller architecture "
    "has no layer-by-layer counterpart in the teacher",
}



def parse_normalization(text: str) -> tuple[list[float], list[float]]:
    """``"m1,m2,m3;s1,s2,s3"`` as (means, stds); raises ``ValueError`` on anything else."""
    mean_text, sep, std_text = text.partition(";")
    mean, std = [float(v) for v in mean_text.split(",")], [float(v) for v in std_text.split(",")]
    if not sep or len(mean) != len(std) or not all(v > 0 for v in std):
        raise ValueError(text)
    return mean, std


def teachers_for(dataset: str) -> tuple[str, ...]:
    """Teachers valid for ``dataset``; a user's image folder gets a CNN trained here."""
    zoo = ("small-cnn",) if dataset.startswith("folder:") else TEACHERS.get(dataset, ())
    return zoo + (CHECKPOINT_TEACHER,) + tuple(TORCHVISION_PREFIX + name for name in TORCHVISION_TEACHERS)

