"""The catalogue of names the configuration accepts, and which combinations apply (no torch, no I/O).

Datasets, zoo teachers, the prefixes of a user's own teacher, OOD pools and
distillation students per teacher. Compression schemes and recovery methods declare
themselves (:mod:`fsmc.config.methods`, :mod:`fsmc.config.schemes`). The schema (:mod:`fsmc.config.schema`) and the checks
(:mod:`fsmc.config.checks`) read these; so do the CLI's listings.
"""

from __future__ import annotations

import re

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
# The channel-importance criteria of scheme=channel.
IMPORTANCES = ("l1", "l2", "bn-scale", "taylor", "class-aware")
STUDENT_INITS = ("teacher", "scratch")
# How scheme=channel shares the pruning among layers: the same ratio everywhere, or by measured damage.
ALLOCATIONS = ("uniform", "damage")


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

