"""The one typed configuration: ``params.yaml`` loaded into frozen dataclasses.

Each pipeline stage has its own section (DVC lists exactly those keys as the
stage's params); ``data`` names what is being compressed and is shared. The file
is loaded and validated once, before any work starts: an unknown key, a value of
the wrong type or an out-of-range value raises :class:`FsmcError` naming it.

Overrides (``fsmc run --set KEY=VALUE``) take ``section.key`` or, when the leaf
name is unique across sections, just ``key`` (``--set method=kd``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from fsmc.errors import FsmcError

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
# A user's own network: "module:PKG.MODULE:FUNCTION" (a function returning the untrained nn.Module) plus a state dict.
MODULE_PREFIX = "module:"
_MODULE_TARGET = re.compile(r"^module:[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$")
# A model in the MLflow registry that fsmc registered: models:/NAME/VERSION or models:/NAME@ALIAS. `fsmc run`
# fetches its fsmc checkpoint (weights only) before the pipeline; the pure stages then read that file.
REGISTRY_PREFIX = "models:/"
_REGISTRY_URI = re.compile(r"^models:/[^/@]+(/[0-9]+|@[A-Za-z0-9_\-]+)$")
# An fsmc checkpoint (a student fsmc wrote, say) as the teacher of the next round: data.teacher_weights=PATH.
CHECKPOINT_TEACHER = "checkpoint"
IMAGENET_NORMALIZATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# The OOD pool each dataset uses with ood_pool=auto; "folder:PATH" names a user's image folder.
DEFAULT_OOD_POOLS = {"digits": "photo-patches", "cifar10": "tinyimagenet"}
OOD_POOLS = ("auto", "photo-patches", "tinyimagenet")
PROFILES = ("exp", "step")
# Compression schemes (fsmc.compress.schemes) and the channel-importance criteria of scheme=channel.
SCHEMES = ("channel", "unstructured", "int8-ptq", "int8-qat", "distill")
IMPORTANCES = ("l1", "l2", "bn-scale", "taylor", "class-aware")
STUDENT_INITS = ("teacher", "scratch")
# Recovery methods (fsmc.recover.methods); the OE-FSMC plug-in is recover.oe on any of them.
RECOVERY_METHODS = ("none", "bp", "kd", "fskd", "cd", "mir")
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


@dataclass(frozen=True)
class DataParams:
    """What is compressed: the in-distribution dataset and the teacher."""

    dataset: str = "digits"  # in-distribution dataset (embedded default: sklearn digits)
    teacher: str = "digits-cnn"  # a zoo name for the dataset; a user's model: torchvision:NAME, module:PKG.MODULE:FUNCTION
    teacher_weights: str = ""  # torchvision/module teachers: the state-dict file (torch.save(model.state_dict()))
    normalization: str = "imagenet"  # torchvision/module teachers: imagenet, or "m1,m2,m3;s1,s2,s3" (per-channel mean;std)
    image_size: int = 0  # resize ID and OOD images to this square size (0: the dataset's own)
    image_channels: int = 0  # 3: grey images repeated to RGB, 1: RGB to grey (0: the dataset's own)
    ood_pool: str = "auto"  # auto (the dataset's default), photo-patches, tinyimagenet, or folder:PATH
    test_fraction: float = 0.3  # share of the dataset held out as the test split (embedded data only)
    split_seed: int = 0  # seed of the stratified train/test split (embedded data only)

    @property
    def resolved_ood_pool(self) -> str:
        """The pool ``ood_pool`` stands for (``auto`` resolved per dataset)."""
        return DEFAULT_OOD_POOLS[self.dataset] if self.ood_pool == "auto" else self.ood_pool

    @property
    def user_teacher(self) -> bool:
        """Whether the teacher is the user's (``torchvision:NAME``, ``module:...``, ``checkpoint``, ``models:/...``), not the zoo's."""
        return (
            self.torchvision_arch is not None
            or self.module_target is not None
            or self.teacher == CHECKPOINT_TEACHER
            or self.registry_teacher
        )

    @property
    def registry_teacher(self) -> bool:
        """Whether the teacher is an MLflow registry URI (``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``)."""
        return self.teacher.startswith(REGISTRY_PREFIX)

    @property
    def torchvision_arch(self) -> str | None:
        """The architecture of a ``torchvision:NAME`` teacher, else ``None``."""
        return self.teacher.removeprefix(TORCHVISION_PREFIX) if self.teacher.startswith(TORCHVISION_PREFIX) else None

    @property
    def module_target(self) -> str | None:
        """``PKG.MODULE:FUNCTION`` of a ``module:PKG.MODULE:FUNCTION`` teacher (the user's own factory), else ``None``."""
        return self.teacher.removeprefix(MODULE_PREFIX) if self.teacher.startswith(MODULE_PREFIX) else None

    def teacher_normalization(self, channels: int) -> tuple[list[float], list[float]]:
        """(mean, std) per channel a torchvision teacher expects its [0, 1] input normalised with."""
        if self.normalization == "imagenet":
            mean, std = IMAGENET_NORMALIZATION
            if channels == 1:  # a grey model trained on ImageNet-normalised data: the luminance average
                return [round(sum(mean) / 3, 6)], [round(sum(std) / 3, 6)]
            return list(mean), list(std)
        return parse_normalization(self.normalization)


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


@dataclass(frozen=True)
class SampleParams:
    """Few-shot, class-imbalanced sampling of the training split."""

    k_max: int = 20  # shots of the most frequent class
    imbalance_ratio: float = 10.0  # rho = n_max / n_min, >= 1
    profile: str = "exp"  # exp: n_c = floor(k_max * rho^(-r/(C-1))); step: half k_max, half floor(k_max/rho)
    seed: int = 0  # seeds the class-rank permutation and the draw


@dataclass(frozen=True)
class CurateOodParams:
    """Out-of-distribution pool curation."""

    budget: str = "all"  # "all" usable pool images, "N" (absolute count) or "Mx" (M times the class deficit sum_c (k_max - n_c))
    near_id_threshold: float = 1.0  # drop OOD images the teacher classifies with max softmax >= this (1.0: off)
    seed: int = 0


@dataclass(frozen=True)
class TeacherParams:
    """How the teacher is obtained: trained here (embedded default) or pretrained, optionally adapted."""

    epochs: int = 30  # epochs of from-scratch training (teachers trained here, e.g. digits-cnn)
    lr: float = 0.05  # from-scratch learning rate
    batch_size: int = 128
    adapt_epochs: int = 0  # pretrained teachers: epochs of fine-tuning on the full training split (0: use as is)
    adapt_lr: float = 0.02  # adaptation learning rate (SGD Nesterov, cosine to 0, crop + flip augmentation)
    seed: int = 0


@dataclass(frozen=True)
class CompressParams:
    """How the teacher is made smaller (``fsmc methods`` lists the schemes)."""

    scheme: str = "channel"  # channel | unstructured | int8-ptq | int8-qat | distill
    importance: str = "l1"  # channel: l1 | l2 | bn-scale | taylor | class-aware
    ratio: float = 0.5  # channel: share of channels removed per prunable layer; unstructured: share of weights zeroed
    global_pruning: bool = False  # channel / unstructured: rank channels or weights across layers, not per layer
    student: str = "auto"  # distill: the smaller architecture (auto: resnet20 for deeper ResNets, small-cnn-half)
    student_init: str = "teacher"  # distill: teacher (block-dropped / channel-pruned copy; same block type only) or scratch
    calibration_images: int = 512  # int8-ptq, class-aware: the whole few-shot set, then OOD images up to this total

    def resolved_student(self, teacher: str) -> str:
        """The distillation student ``student`` stands for (``auto``: the first listed for ``teacher``)."""
        if self.student != "auto":
            return self.student
        return DISTILL_STUDENTS.get(teacher, ("",))[0]


@dataclass(frozen=True)
class RecoverParams:
    """Few-sample accuracy recovery of the compressed student."""

    method: str = "mir"  # none | bp | kd | fskd | cd | mir (`fsmc methods` lists them)
    oe: bool = True  # the OE-FSMC plug-in on top of the method: OOD images, Gamma labels, w_c, joint distillation
    early_stopping: str = "off"  # off, on, auto (on when OOD images join training)
    steps: int = 400  # optimiser steps (an upper bound when early stopping is on)
    batch_size: int = 128  # images per step: few-shot only, or few-shot and OOD when the plug-in is on
    id_per_batch: int = 64  # oe: few-shot images in each batch (0: drawn uniformly from ID ∪ OOD with the rest)
    ood_weight: float = 1.0  # oe with id_per_batch > 0: weight of the OOD mean of each term against the ID mean
    lr: float = 0.02
    weight_decay: float = 1e-4
    temperature: float = 4.0  # KD softmax temperature, > 0
    alpha: float = 0.9  # weight of the distillation term; 1 - alpha weighs the label terms
    lambda_ood: float = 0.1  # weight of the class-weighted OOD label term (oe only)
    joint_kd: float = 0.1  # oe: weight of logit KD over ID ∪ OOD for methods that do not distil logits (mir, bp)
    class_weighted_distill: bool = False  # oe: each shot's distillation terms weighted by its class's w_c (rare classes up)
    precision: str = "auto"  # auto (bf16 where the device computes it natively, else fp32) | fp32 | bf16
    ood_holdout: int = 256  # oe + early stopping: OOD images held out; the signal is KD to the teacher on them
    holdout_fraction: float = 0.2  # early stopping without OOD: share of the few-shot set held out
    eval_every: int = 20  # steps between early-stopping checks
    patience: int = 5  # checks without improvement before stopping
    mu: float = 0.9  # cd: weight of the correction loss (1 - mu: imitation); the CD code uses 0.9 for ResNet-56
    layerwise_ood: int = 256  # fskd, cd + oe: OOD images joining the layer-wise solve (a seeded draw)
    layerwise_ood_weight: float = 0.25  # fskd, cd + oe: the OOD images' mean weight in the layer-wise solve against the shots' mean
    seed: int = 0

    @property
    def label(self) -> str:
        """How runs name the recovery: ``kd``, ``kd+oe``, ``bp+oe``..."""
        return f"{self.method}+oe" if self.oe else self.method


@dataclass(frozen=True)
class EvaluateParams:
    """Evaluation on the test split."""

    minority_classes: int = 3  # how many of the fewest-shot classes make up "minority"
    max_test_images: int = 0  # evaluate on a stratified, seeded subset of this size (0: the whole test split)


@dataclass(frozen=True)
class GateParams:
    """When a registered student earns the registry alias (``champion``): fair to every class, and faster."""

    max_top1_drop: float = 0.03  # teacher top-1 minus student top-1, at most (fraction, 0.03 = 3 points)
    max_worst_class_drop: float = 0.10  # teacher worst-class accuracy minus the student's, at most
    min_speedup: float = 1.0  # teacher / student CPU latency at latency_batch, at least
    latency_batch: int = 64  # test images per timed forward pass
    alias: str = "champion"  # the registry alias the gate grants


@dataclass(frozen=True)
class ServeParams:
    """The scheduled deployment ``fsmc serve`` offers on the Prefect server."""

    deployment: str = "nightly"  # deployment name: the flow runs as compress/<deployment>
    cron: str = "0 3 * * *"  # when it runs (5-field cron, the server's time zone: UTC)
    benchmark_preset: str = "smoke"  # the preset served as benchmark/<benchmark_preset>
    benchmark_cron: str = "0 4 * * 0"  # when the benchmark runs (weekly: Sunday 04:00 UTC)


@dataclass(frozen=True)
class TrackingParams:
    """MLflow experiment and registered-model names."""

    experiment: str = "fsmc"
    registered_model: str = "fsmc-student"


@dataclass(frozen=True)
class Params:
    """All sections of ``params.yaml``."""

    data: DataParams = DataParams()
    sample_few_shot: SampleParams = SampleParams()
    curate_ood: CurateOodParams = CurateOodParams()
    teacher: TeacherParams = TeacherParams()
    compress: CompressParams = CompressParams()
    recover: RecoverParams = RecoverParams()
    evaluate: EvaluateParams = EvaluateParams()
    gate: GateParams = GateParams()
    serve: ServeParams = ServeParams()
    tracking: TrackingParams = TrackingParams()

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Nested plain-dict view (section -> key -> value)."""
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """Flat ``section.key -> value`` view, e.g. for MLflow params."""
        return {f"{s}.{k}": v for s, sec in self.to_dict().items() for k, v in sec.items()}


_SECTION_TYPES: dict[str, type] = {f.name: get_type_hints(Params)[f.name] for f in fields(Params)}
_BUDGET_PATTERN = re.compile(r"^(?:(?P<n>\d+)|(?P<m>\d+(?:\.\d+)?)x)$")


def _leaf_index() -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for section, cls in _SECTION_TYPES.items():
        for f in fields(cls):
            index.setdefault(f.name, []).append(section)
    return index


def valid_keys() -> list[str]:
    """Every ``section.key`` that params.yaml and ``--set`` accept."""
    return [f"{s}.{f.name}" for s, cls in _SECTION_TYPES.items() for f in fields(cls)]


def resolve_key(key: str) -> tuple[str, str]:
    """Map ``section.key`` or a unique leaf ``key`` to ``(section, key)``."""
    if "." in key:
        section, _, leaf = key.partition(".")
        cls = _SECTION_TYPES.get(section)
        if cls is not None and leaf in {f.name for f in fields(cls)}:
            return section, leaf
    else:
        sections = _leaf_index().get(key, [])
        if len(sections) == 1:
            return sections[0], key
        if len(sections) > 1:
            options = ", ".join(f"{s}.{key}" for s in sections)
            raise FsmcError(f"The key {key!r} is ambiguous: it exists in several sections. Write one of: {options}.")
    raise FsmcError(
        f"Unknown parameter {key!r}. Valid keys are: {', '.join(valid_keys())} "
        "(a leaf name alone also works when it is unique, e.g. 'method')."
    )


def _coerce(section: str, key: str, value: Any, target: type) -> Any:
    """Convert ``value`` (from YAML or a ``--set`` string) to ``target`` or raise."""
    where = f"{section}.{key}"
    if isinstance(value, str) and target is not str:
        text = value.strip()
        try:
            if target is bool:
                lowered = text.lower()
                if lowered in ("true", "1", "yes"):
                    return True
                if lowered in ("false", "0", "no"):
                    return False
                raise ValueError
            converted = target(text)
            if target is float and not math.isfinite(converted):
                raise ValueError
            return converted
        except ValueError:
            raise FsmcError(f"{where}={value!r} is not a valid {target.__name__}; give a {target.__name__} value.") from None
    if target is float and isinstance(value, float) and not math.isfinite(value):
        raise FsmcError(f"{where}={value!r} is not a finite number; give a finite float.")
    if target is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if target is str and isinstance(value, bool):
        # YAML 1.1 (PyYAML, and DVC rewriting params.yaml) reads an unquoted on/off as a boolean.
        return "on" if value else "off"
    if target is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, target) or (target is int and isinstance(value, bool)):
        raise FsmcError(
            f"{where}={value!r} has type {type(value).__name__}, but {where} takes a {target.__name__}."
        )
    return value


def _build(raw: dict[str, dict[str, Any]]) -> Params:
    sections = {}
    for section, cls in _SECTION_TYPES.items():
        given = raw.get(section) or {}
        hints = get_type_hints(cls)
        values = {k: _coerce(section, k, v, hints[k]) for k, v in given.items()}
        sections[section] = cls(**values)
    return Params(**sections)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise FsmcError(message)


def parse_budget(budget: str) -> tuple[str, float]:
    """Parse an OOD budget: ``"all"`` -> ``("all", 0)``, ``"500"`` -> ``("absolute", 500)``, ``"3x"`` -> ``("deficit", 3.0)``."""
    if budget.strip() == "all":
        return "all", 0.0
    match = _BUDGET_PATTERN.match(budget.strip())
    if not match:
        raise FsmcError(
            f"curate_ood.budget={budget!r} is not valid: give 'all' (every usable pool image), a whole number of "
            "OOD images (e.g. '500') or a multiple of the class deficit with an 'x' suffix (e.g. '3x')."
        )
    if match.group("n") is not None:
        return "absolute", float(match.group("n"))
    return "deficit", float(match.group("m"))


def _check_user_teacher(d: DataParams) -> None:
    """A user's teacher needs its weights (a file, or the registry), a valid normalisation and a sane image size."""
    if d.registry_teacher:
        _check(
            bool(_REGISTRY_URI.match(d.teacher)),
            f"data.teacher={d.teacher!r} is not a registry URI; write models:/NAME/VERSION or models:/NAME@ALIAS.",
        )
        _check(
            not d.teacher_weights,
            f"data.teacher_weights={d.teacher_weights!r} does not apply to a registry teacher ({d.teacher}): its "
            "weights come from the registry. Remove teacher_weights.",
        )
    elif d.user_teacher:
        _check(
            d.module_target is None or bool(_MODULE_TARGET.match(d.teacher)),
            f"data.teacher={d.teacher!r} is not a factory name; write module:PKG.MODULE:FUNCTION (e.g. "
            "module:mypkg.nets:build_net), a function returning the untrained torch.nn.Module.",
        )
        _check(
            bool(d.teacher_weights),
            f"data.teacher={d.teacher!r} needs its trained weights: set data.teacher_weights=PATH to "
            + (
                "an fsmc checkpoint (e.g. runs/<run>/recover/model.pt)."
                if d.teacher == CHECKPOINT_TEACHER
                else "a file saved with torch.save(model.state_dict(), PATH)."
            ),
        )
    else:
        _check(
            not d.teacher_weights,
            f"data.teacher_weights={d.teacher_weights!r} applies only to a user's own teacher (torchvision:NAME, "
            f"module:PKG.MODULE:FUNCTION, checkpoint); zoo teacher "
            f"{d.teacher!r} brings its own weights. Remove teacher_weights or name a torchvision teacher.",
        )
    if d.normalization != "imagenet":
        try:
            parse_normalization(d.normalization)
            valid = True
        except ValueError:
            valid = False
        _check(
            valid,
            f"data.normalization={d.normalization!r} is not valid; give imagenet, or per-channel means and stds as "
            "'m1,m2,m3;s1,s2,s3' (as many stds as means, all positive).",
        )
    _check(
        d.image_size == 0 or 8 <= d.image_size <= 1024,
        f"data.image_size={d.image_size} must be 0 (the dataset's own size) or between 8 and 1024 pixels.",
    )
    _check(
        d.image_channels in (0, 1, 3),
        f"data.image_channels={d.image_channels} must be 0 (as the dataset has), 1 (grey) or 3 (RGB).",
    )


# numpy's and torch's generators take seeds in [0, 2**32).
_SEED_LIMIT = 2**32


def _check_seeds(params: Params) -> None:
    """Every ``seed`` / ``split_seed`` key is a valid generator seed (else numpy fails mid-run)."""
    for section, body in params.to_dict().items():
        for key, value in body.items():
            if key.endswith("seed"):
                _check(
                    0 <= value < _SEED_LIMIT,
                    f"{section}.{key}={value} is not a valid seed; give an integer from 0 to {_SEED_LIMIT - 1}.",
                )


def validate(params: Params) -> Params:
    """Check every value's range; return ``params`` unchanged or raise :class:`FsmcError`."""
    _check_seeds(params)
    d, s, r = params.data, params.sample_few_shot, params.recover
    _check(
        d.dataset in DATASETS or d.dataset.startswith("folder:"),
        f"data.dataset={d.dataset!r} is unknown; valid datasets: {', '.join(DATASETS)}, or folder:PATH "
        "(PATH/train/<class>/ and PATH/test/<class>/ of PNG/JPEG images).",
    )
    _check(
        d.ood_pool != "auto" or d.dataset in DEFAULT_OOD_POOLS,
        f"data.ood_pool=auto has no default for data.dataset={d.dataset!r}; name a pool: "
        f"{', '.join(OOD_POOLS[1:])}, or folder:PATH.",
    )
    teachers = teachers_for(d.dataset)
    _check(
        d.teacher in teachers or d.registry_teacher or d.module_target is not None,
        f"data.teacher={d.teacher!r} does not exist for dataset {d.dataset!r}; valid teachers: {', '.join(teachers)}, "
        "a model fsmc registered in MLflow (models:/NAME/VERSION or models:/NAME@ALIAS), or your own network's "
        "factory (module:PKG.MODULE:FUNCTION) with data.teacher_weights.",
    )
    _check_user_teacher(d)
    _check(0 < d.test_fraction < 1, f"data.test_fraction={d.test_fraction} must lie strictly between 0 and 1.")
    _check(s.k_max >= 1, f"sample_few_shot.k_max={s.k_max} must be at least 1 (shots of the largest class).")
    _check(
        s.imbalance_ratio >= 1,
        f"sample_few_shot.imbalance_ratio={s.imbalance_ratio} must be >= 1 (rho = n_max / n_min; 1 is balanced).",
    )
    _check(
        s.imbalance_ratio <= s.k_max,
        f"sample_few_shot.imbalance_ratio={s.imbalance_ratio} exceeds k_max={s.k_max}: the rarest class would get "
        f"floor({s.k_max}/{s.imbalance_ratio}) = 0 samples. Use a ratio of at most {s.k_max} or raise k_max.",
    )
    _check(s.profile in PROFILES, f"sample_few_shot.profile={s.profile!r} is unknown; valid profiles: {', '.join(PROFILES)}.")
    _check(
        d.ood_pool in OOD_POOLS or d.ood_pool.startswith("folder:"),
        f"data.ood_pool={d.ood_pool!r} is unknown; valid: {', '.join(OOD_POOLS)}, or folder:PATH (class sub-folders of images).",
    )
    parse_budget(params.curate_ood.budget)
    _check(
        0 < params.curate_ood.near_id_threshold <= 1,
        f"curate_ood.near_id_threshold={params.curate_ood.near_id_threshold} must lie in (0, 1] (1 turns the filter off).",
    )
    t = params.teacher
    _check(t.epochs >= 1 and t.batch_size >= 1 and t.lr > 0, f"teacher: epochs, batch_size and lr must be positive (got {t}).")
    _check(t.adapt_epochs >= 0 and t.adapt_lr > 0, f"teacher.adapt_epochs must be >= 0 and adapt_lr > 0 (got {t}).")
    c = params.compress
    _check(
        c.scheme in SCHEMES,
        f"compress.scheme={c.scheme!r} is unknown; valid schemes: {', '.join(SCHEMES)} (`fsmc methods` describes them).",
    )
    _check(c.importance in IMPORTANCES, f"compress.importance={c.importance!r} is unknown; valid: {', '.join(IMPORTANCES)}.")
    _check(0 < c.ratio < 1, f"compress.ratio={c.ratio} must lie strictly between 0 and 1 (share of channels or weights removed).")
    _check(
        c.student_init in STUDENT_INITS,
        f"compress.student_init={c.student_init!r} is unknown; valid: {', '.join(STUDENT_INITS)}.",
    )
    if c.scheme == "distill":
        students = DISTILL_STUDENTS.get(d.teacher, ())
        _check(
            c.resolved_student(d.teacher) in students,
            f"compress.student={c.student!r} is not a smaller architecture for teacher {d.teacher!r}; valid: "
            + (", ".join(("auto", *students)) if students else "none (no smaller zoo architecture; use scheme=channel)")
            + ".",
        )
        pair = (d.teacher, c.resolved_student(d.teacher))
        _check(
            not (r.method == "mir" and pair in NARROW_STUDENTS),
            f"recover.method='mir' does not apply to compress.scheme='distill' with student "
            f"{pair[1]!r}: mir reuses the teacher's classifier, which needs the student's feature "
            f"width to equal the teacher's, and {pair[1]!r} is narrower than {pair[0]!r}. Use method=kd (or bp, none) with it.",
        )
        _check(
            not (c.student_init == "teacher" and pair in SCRATCH_ONLY_STUDENTS),
            f"compress.student_init='teacher' cannot start {pair[1]!r} from {pair[0]!r}: their blocks differ in type or "
            "layout, so no teacher block can be copied into the student. Set compress.student_init=scratch.",
        )
    _check(c.calibration_images >= 1, f"compress.calibration_images={c.calibration_images} must be at least 1.")
    _check(
        r.method in RECOVERY_METHODS,
        f"recover.method={r.method!r} is unknown; valid methods: {', '.join(RECOVERY_METHODS)} (`fsmc methods` describes them).",
    )
    _check(
        r.early_stopping in EARLY_STOPPING,
        f"recover.early_stopping={r.early_stopping!r} is unknown; valid: {', '.join(EARLY_STOPPING)}.",
    )
    _check(0 <= r.mu <= 1, f"recover.mu={r.mu} must lie in [0, 1] (weight of CD's correction loss; 1 - mu weighs imitation).")
    reason = INAPPLICABLE.get((c.scheme, r.method))
    _check(
        reason is None,
        f"recover.method={r.method!r} does not apply to compress.scheme={c.scheme!r}: {reason}. Methods that do: "
        + ", ".join(m for m in RECOVERY_METHODS if (c.scheme, m) not in INAPPLICABLE)
        + ".",
    )
    _check(r.steps >= 1, f"recover.steps={r.steps} must be at least 1.")
    _check(r.batch_size >= 2, f"recover.batch_size={r.batch_size} must be at least 2.")
    _check(
        0 <= r.id_per_batch < r.batch_size,
        f"recover.id_per_batch={r.id_per_batch} must lie in [0, batch_size) = [0, {r.batch_size}) (0: uniform over ID and OOD).",
    )
    _check(r.ood_weight >= 0, f"recover.ood_weight={r.ood_weight} must be >= 0.")
    _check(r.weight_decay >= 0, f"recover.weight_decay={r.weight_decay} must be >= 0.")
    _check(r.joint_kd >= 0, f"recover.joint_kd={r.joint_kd} must be >= 0.")
    _check(r.precision in PRECISIONS, f"recover.precision={r.precision!r} is unknown; valid: {', '.join(PRECISIONS)}.")
    _check(r.layerwise_ood >= 1, f"recover.layerwise_ood={r.layerwise_ood} must be at least 1.")
    _check(r.layerwise_ood_weight >= 0, f"recover.layerwise_ood_weight={r.layerwise_ood_weight} must be >= 0 (0: the OOD images do not count).")
    _check(r.ood_holdout >= 1, f"recover.ood_holdout={r.ood_holdout} must be at least 1.")
    _check(r.lr > 0, f"recover.lr={r.lr} must be positive.")
    _check(r.temperature > 0, f"recover.temperature={r.temperature} must be positive.")
    _check(0 <= r.alpha <= 1, f"recover.alpha={r.alpha} must lie in [0, 1].")
    _check(r.lambda_ood >= 0, f"recover.lambda_ood={r.lambda_ood} must be >= 0.")
    _check(0 < r.holdout_fraction < 1, f"recover.holdout_fraction={r.holdout_fraction} must lie strictly between 0 and 1.")
    _check(r.eval_every >= 1 and r.patience >= 1, "recover.eval_every and recover.patience must be at least 1.")
    _check(params.evaluate.minority_classes >= 1, "evaluate.minority_classes must be at least 1.")
    g = params.gate
    _check(0 <= g.max_top1_drop <= 1, f"gate.max_top1_drop={g.max_top1_drop} must lie in [0, 1] (a fraction: 0.03 = 3 points).")
    _check(
        0 <= g.max_worst_class_drop <= 1,
        f"gate.max_worst_class_drop={g.max_worst_class_drop} must lie in [0, 1] (a fraction: 0.1 = 10 points).",
    )
    _check(g.min_speedup > 0, f"gate.min_speedup={g.min_speedup} must be positive (1.0: at least as fast as the teacher).")
    _check(g.latency_batch >= 1, f"gate.latency_batch={g.latency_batch} must be at least 1.")
    _check(
        re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", g.alias) is not None,
        f"gate.alias={g.alias!r} is not a valid registry alias; use letters, digits, '-' and '_' (e.g. champion).",
    )
    sv = params.serve
    _check(
        re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", sv.deployment) is not None,
        f"serve.deployment={sv.deployment!r} is not a valid deployment name; use letters, digits, '.', '-' and '_'.",
    )
    for key in ("cron", "benchmark_cron"):
        cron = getattr(sv, key)
        _check(
            len(cron.split()) == 5 and re.fullmatch(r"[0-9*/,\- ]+", cron) is not None,
            f"serve.{key}={cron!r} is not a 5-field cron expression (minute hour day month weekday, e.g. '0 3 * * *').",
        )
    from fsmc.benchmark.presets import PRESETS  # here: the presets module needs nothing of this one

    _check(sv.benchmark_preset in PRESETS, f"serve.benchmark_preset={sv.benchmark_preset!r} is unknown; valid presets: {', '.join(PRESETS)}.")
    _check(params.evaluate.max_test_images >= 0, "evaluate.max_test_images must be >= 0 (0 means the whole test split).")
    return params


def parse_overrides(pairs: list[str]) -> dict[str, dict[str, str]]:
    """Turn ``["method=kd", "sample_few_shot.k_max=10"]`` into ``{section: {key: value}}``."""
    overrides: dict[str, dict[str, str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise FsmcError(f"--set {pair!r} is not of the form KEY=VALUE (e.g. --set recover.method=kd).")
        section, leaf = resolve_key(key.strip())
        overrides.setdefault(section, {})[leaf] = value
    return overrides


def load_params(path: Path | None = None, overrides: list[str] | None = None) -> Params:
    """Load ``params.yaml`` (or the defaults when ``path`` is None), apply overrides, validate.

    Raises:
        FsmcError: on a missing file, unknown section or key, wrong type or bad value.
    """
    raw: dict[str, dict[str, Any]] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FsmcError(f"Parameter file {str(path)!r} does not exist; pass --params PATH to a params.yaml.")
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise FsmcError(f"{path} must hold a mapping of sections, not {type(loaded).__name__}.")
        for section, body in loaded.items():
            if section not in _SECTION_TYPES:
                raise FsmcError(f"Unknown section {section!r} in {path}; valid sections: {', '.join(_SECTION_TYPES)}.")
            if not isinstance(body, dict):
                raise FsmcError(f"Section {section!r} in {path} must be a mapping of keys to values.")
            raw[section] = dict(body)
    for section, body in parse_overrides(overrides or []).items():
        raw.setdefault(section, {}).update(body)
    return params_from_dict(raw)


def params_from_dict(raw: dict[str, dict[str, Any]]) -> Params:
    """Build and validate :class:`Params` from nested ``{section: {key: value}}`` (e.g. a flow parameter)."""
    for section, body in raw.items():
        if section not in _SECTION_TYPES:
            raise FsmcError(f"Unknown section {section!r}; valid sections: {', '.join(_SECTION_TYPES)}.")
        for key in body:
            resolve_key(f"{section}.{key}")
    return validate(_build(raw))


def dump_params(params: Params) -> str:
    """YAML text of ``params`` in section order (for writing params.yaml)."""
    return yaml.safe_dump(params.to_dict(), sort_keys=False)
