"""The one typed configuration: ``params.yaml`` loaded into frozen dataclasses, validated once.

Each pipeline stage has its own section (DVC lists exactly those keys as the
stage's params); ``data`` names what is being compressed and is shared. The file
is loaded and validated once, before any work starts: an unknown key, a value of
the wrong type or an out-of-range value raises :class:`FsmcError` naming it.

Modules: :mod:`~fsmc.config.catalogue` (the names the settings accept),
:mod:`~fsmc.config.methods` and :mod:`~fsmc.config.schemes` (one declaration module per recovery
method and compression scheme), :mod:`~fsmc.config.applicability` (which combinations apply, from
those declarations), :mod:`~fsmc.config.schema` (the dataclasses),
:mod:`~fsmc.config.checks` (range checks, one function per section),
:mod:`~fsmc.config.loading` (params.yaml and ``--set`` overrides),
:mod:`~fsmc.config.presets` (the benchmark grids ``fsmc benchmark`` runs).
"""

from __future__ import annotations

from fsmc.config.applicability import RECOVERY_METHODS, SCHEMES, applicable_methods, inapplicable_reason
from fsmc.config.catalogue import (
    ALLOCATIONS,
    CHECKPOINT_TEACHER,
    DATASETS,
    DEFAULT_OOD_POOLS,
    DISTILL_STUDENTS,
    EARLY_STOPPING,
    IMAGENET_NORMALIZATION,
    IMPORTANCES,
    MODULE_PREFIX,
    MODULE_TARGET_PATTERN,
    NARROW_STUDENTS,
    OOD_POOLS,
    PRECISIONS,
    PROFILES,
    REGISTERED_NAME_PATTERN,
    REGISTRY_PREFIX,
    REGISTRY_URI_PATTERN,
    SCRATCH_ONLY_STUDENTS,
    STUDENT_INITS,
    TEACHERS,
    TIMM_NAME_PATTERN,
    TIMM_PREFIX,
    TORCHVISION_PREFIX,
    TORCHVISION_TEACHERS,
    parse_normalization,
    teachers_for,
)
from fsmc.config.checks import (
    parse_budget,
    validate,
)
from fsmc.config.declarations import MethodDeclaration, SchemeDeclaration
from fsmc.config.loading import (
    dump_params,
    load_params,
    params_from_dict,
    parse_overrides,
    read_params_file,
    resolve_key,
    valid_keys,
)
from fsmc.config.methods import METHOD_DECLARATIONS
from fsmc.config.schema import (
    CompressParams,
    CurateOodParams,
    DataParams,
    EvaluateParams,
    GateParams,
    Params,
    RecoverParams,
    SampleParams,
    ServeParams,
    ShipParams,
    TargetParams,
    TeacherParams,
    TrackingParams,
)
from fsmc.config.schemes import SCHEME_DECLARATIONS

__all__ = [
    "METHOD_DECLARATIONS",
    "MethodDeclaration",
    "RECOVERY_METHODS",
    "SCHEME_DECLARATIONS",
    "SCHEMES",
    "SchemeDeclaration",
    "applicable_methods",
    "inapplicable_reason",
    "CHECKPOINT_TEACHER",
    "CompressParams",
    "CurateOodParams",
    "DATASETS",
    "DEFAULT_OOD_POOLS",
    "DISTILL_STUDENTS",
    "DataParams",
    "EARLY_STOPPING",
    "EvaluateParams",
    "GateParams",
    "ShipParams",
    "TargetParams",
    "IMAGENET_NORMALIZATION",
    "ALLOCATIONS",
    "IMPORTANCES",
    "MODULE_PREFIX",
    "MODULE_TARGET_PATTERN",
    "NARROW_STUDENTS",
    "OOD_POOLS",
    "PRECISIONS",
    "PROFILES",
    "Params",
    "REGISTRY_PREFIX",
    "REGISTERED_NAME_PATTERN",
    "REGISTRY_URI_PATTERN",
    "RecoverParams",
    "SCRATCH_ONLY_STUDENTS",
    "STUDENT_INITS",
    "SampleParams",
    "ServeParams",
    "TEACHERS",
    "TIMM_NAME_PATTERN",
    "TIMM_PREFIX",
    "TORCHVISION_PREFIX",
    "TORCHVISION_TEACHERS",
    "TeacherParams",
    "TrackingParams",
    "dump_params",
    "load_params",
    "params_from_dict",
    "parse_budget",
    "parse_normalization",
    "parse_overrides",
    "read_params_file",
    "resolve_key",
    "teachers_for",
    "valid_keys",
    "validate",
]
