"""The schema of ``params.yaml``: one frozen dataclass per pipeline stage, and :class:`Params` holding them all."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from fsmc.config.catalogue import (
    CHECKPOINT_TEACHER,
    DEFAULT_OOD_POOLS,
    DISTILL_STUDENTS,
    IMAGENET_NORMALIZATION,
    MODULE_PREFIX,
    OOD_POOLS,
    REGISTRY_PREFIX,
    TIMM_PREFIX,
    TORCHVISION_PREFIX,
    parse_normalization,
)
from fsmc.errors import FsmcError


@dataclass(frozen=True)
class DataParams:
    """What is compressed: the in-distribution dataset and the teacher."""

    dataset: str = "digits"  # in-distribution dataset (embedded default: sklearn digits)
    teacher: str = "digits-cnn"  # a zoo name for the dataset; a user's model: torchvision:NAME, timm:NAME, module:PKG.MODULE:FUNCTION, models:/NAME/VERSION
    teacher_weights: str = ""  # torchvision/timm/module teachers: the state-dict file (torch.save(model.state_dict()))
    normalization: str = "imagenet"  # torchvision/module teachers: imagenet, or "m1,m2,m3;s1,s2,s3" (per-channel mean;std)
    image_size: int = 0  # resize ID and OOD images to this square size (0: the dataset's own)
    image_channels: int = 0  # 3: grey images repeated to RGB, 1: RGB to grey (0: the dataset's own)
    ood_pool: str = "auto"  # auto (the dataset's default), photo-patches, tinyimagenet, or folder:PATH
    test_fraction: float = 0.3  # share of the dataset held out as the test split (embedded data only)
    split_seed: int = 0  # seed of the stratified train/test split (embedded data only)

    @property
    def resolved_ood_pool(self) -> str:
        """The pool ``ood_pool`` stands for (``auto`` resolved per dataset).

        Raises:
            FsmcError: ``auto`` for a dataset with no default pool (a user's image folder). Checked here, where
                the pool is needed, not when params load: ``fsmc register-teacher`` reads no pool.
        """
        if self.ood_pool != "auto":
            return self.ood_pool
        if self.dataset not in DEFAULT_OOD_POOLS:
            raise FsmcError(
                f"data.ood_pool=auto has no default for data.dataset={self.dataset!r}; name a pool: "
                f"{', '.join(OOD_POOLS[1:])}, or folder:PATH (class sub-folders of images)."
            )
        return DEFAULT_OOD_POOLS[self.dataset]

    @property
    def user_teacher(self) -> bool:
        """Whether the teacher is the user's (``torchvision:NAME``, ``module:...``, ``checkpoint``, ``models:/...``), not the zoo's."""
        return (
            self.torchvision_arch is not None
            or self.timm_arch is not None
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
    def timm_arch(self) -> str | None:
        """The architecture of a ``timm:NAME`` teacher, else ``None``."""
        return self.teacher.removeprefix(TIMM_PREFIX) if self.teacher.startswith(TIMM_PREFIX) else None

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
    # A registry teacher that another tool registered as a pickled module (MLflow's only format before 3.x) is
    # unpickled only when this is true. Unpickling runs code from the registry: set it only for a registry you trust.
    trust_pickle: bool = False


@dataclass(frozen=True)
class CompressParams:
    """How the teacher is made smaller (``fsmc methods`` lists the schemes)."""

    scheme: str = "channel"  # channel | unstructured | int8-ptq | int8-qat | distill | channel+int8-ptq | block-drop | block-drop+int8-ptq
    importance: str = "l1"  # channel: l1 | l2 | bn-scale | taylor | class-aware
    ratio: float = 0.5  # channel: share of channels removed per prunable layer; unstructured: share of weights zeroed
    global_pruning: bool = False  # channel / unstructured: rank channels or weights across layers, not per layer
    round_to: int = 0  # channel: keep a multiple of this many channels per layer (8, 16: SIMD-friendly widths); 0: exact ratio
    allocation: str = "damage"  # channel: damage (per-layer ratios by measured damage per MAC; +0.62 top-1 on CIFAR) | uniform (ratio in every layer)
    macs_fraction: float = 0.0  # channel, allocation=damage: teacher MACs the student keeps; 0: what uniform at ratio keeps
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
    lr: float = 0.0  # SGD (Nesterov) learning rate, cosine to 0; 0: the method's own (mir 0.1, the others 0.02)
    weight_decay: float = 1e-4
    temperature: float = 4.0  # KD softmax temperature, > 0
    alpha: float = 0.9  # weight of the distillation term; 1 - alpha weighs the label terms
    lambda_ood: float = 0.1  # weight of the class-weighted OOD label term (oe only)
    joint_kd: float = 0.1  # oe: weight of logit KD over ID ∪ OOD for methods that do not distil logits (mir, bp)
    precision: str = "auto"  # auto (bf16 where the device computes it natively, else fp32) | fp32 | bf16
    ood_holdout: int = 256  # oe + early stopping: OOD images held out; the signal is KD to the teacher on them
    holdout_fraction: float = 0.2  # early stopping without OOD: share of the few-shot set held out
    eval_every: int = 20  # steps between early-stopping checks
    patience: int = 5  # checks without improvement before stopping
    mu: float = 0.9  # cd: weight of the correction loss (1 - mu: imitation); the CD code uses 0.9 for ResNet-56
    layerwise_ood: int = 256  # fskd, cd + oe: OOD images joining the layer-wise solve (a seeded draw)
    layerwise_ood_weight: float = 0.25  # fskd, cd + oe: the OOD images' mean weight in the layer-wise solve against the shots' mean
    # torch threads while recovering (0: torch's own, all cores). The weights are bit-identical only at the same count
    # (sums split across threads round differently), so `fsmc tune` writes the count each candidate ran with.
    threads: int = 0
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
class ShipParams:
    """How the registered student is shipped: the inference runtime that runs it, chosen by measuring on this CPU."""

    runtime: str = "auto"  # auto (the fastest measured) | openvino | onnxruntime | torch
    inference_precision: str = "auto"  # auto (bf16 where the CPU computes it natively and the runtime can) | fp32
    threads: int = 0  # inference threads; 0: 1 or all cores, measured at `batch` (fewer within 10 % of the fastest)
    batch: int = 1  # the batch the runtime and threads are chosen for (1: one image at a time, as online serving)
    min_agreement: float = 0.98  # least share of test predictions a runtime shares with torch (below: kept only if no less accurate)
    timing_seconds: float = 2.0  # seconds of timed calls per comparison (candidates; each batch); more: steadier figures


@dataclass(frozen=True)
class GateParams:
    """When a registered student earns the registry alias (``champion``): fair to every class, and faster."""

    max_top1_drop: float = 0.03  # teacher top-1 minus student top-1, at most (fraction, 0.03 = 3 points)
    max_worst_class_drop: float = 0.10  # teacher worst-class accuracy minus the student's, at most
    min_speedup: float = 1.0  # compression speed-up at latency_batch (teacher and student in the shipped runtime), at least
    latency_batch: int = 64  # images per timed forward pass for the gate (batch 1 is always reported beside it)
    alias: str = "champion"  # the registry alias the gate grants


@dataclass(frozen=True)
class TargetParams:
    """What ``fsmc tune`` searches for: the fastest student meeting this and the gate's accuracy limits."""

    speedup: float = 0.0  # compression speed-up asked, measured at `batch` in the shipped runtime (0: no speed target)
    batch: int = 1  # images per timed call for `speedup`
    macs: float = 0.0  # share of the teacher's MACs the student may keep, in (0, 1) (0: no MACs target)
    budget_minutes: float = 30.0  # wall-clock budget of the search
    levels: int = 4  # MACs levels of the per-layer allocation tried for a speed-up target
    long_factor: int = 4  # a third round: the nearest accuracy misses recovered again with this many times recover.steps (0: none)


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
    ship: ShipParams = ShipParams()
    gate: GateParams = GateParams()
    target: TargetParams = TargetParams()
    serve: ServeParams = ServeParams()
    tracking: TrackingParams = TrackingParams()

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Nested plain-dict view (section -> key -> value)."""
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """Flat ``section.key -> value`` view, e.g. for MLflow params."""
        return {f"{s}.{k}": v for s, sec in self.to_dict().items() for k, v in sec.items()}

