"""Range checks of a loaded :class:`Params`, one function per section; each failure is a one-paragraph FsmcError."""

from __future__ import annotations

import re

from fsmc.config.applicability import RECOVERY_METHODS, SCHEMES, applicable_methods, configuration_problems, inapplicable_reason
from fsmc.config.catalogue import (
    ALLOCATIONS,
    CHECKPOINT_TEACHER,
    DATASETS,
    DISTILL_STUDENTS,
    EARLY_STOPPING,
    IMPORTANCES,
    MODULE_TARGET_PATTERN,
    OOD_POOLS,
    PRECISIONS,
    PROFILES,
    REGISTERED_NAME_PATTERN,
    REGISTRY_URI_PATTERN,
    SCRATCH_ONLY_STUDENTS,
    STUDENT_INITS,
    TIMM_NAME_PATTERN,
    parse_normalization,
    teachers_for,
)
from fsmc.config.presets import PRESETS
from fsmc.config.schema import DataParams, Params
from fsmc.errors import FsmcError

_BUDGET_PATTERN = re.compile(r"^(?:(?P<n>\d+)|(?P<m>\d+(?:\.\d+)?)x)$")


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
            bool(REGISTRY_URI_PATTERN.match(d.teacher)),
            f"data.teacher={d.teacher!r} is not a registry URI; write models:/NAME/VERSION or models:/NAME@ALIAS.",
        )
        _check(
            not d.teacher_weights,
            f"data.teacher_weights={d.teacher_weights!r} does not apply to a registry teacher ({d.teacher}): its "
            "weights come from the registry. Remove teacher_weights.",
        )
    elif d.user_teacher:
        _check(
            d.module_target is None or bool(MODULE_TARGET_PATTERN.match(d.teacher)),
            f"data.teacher={d.teacher!r} is not a factory name; write module:PKG.MODULE:FUNCTION (e.g. "
            "module:mypkg.nets:build_net), a function returning the untrained torch.nn.Module.",
        )
        _check(
            d.timm_arch is None or bool(TIMM_NAME_PATTERN.match(d.teacher)),
            f"data.teacher={d.teacher!r} is not a timm architecture name; write timm:NAME (e.g. timm:resnet18, "
            "timm:mobilenetv3_small_100; timm.list_models() lists them).",
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
            f"timm:NAME, module:PKG.MODULE:FUNCTION, checkpoint); zoo teacher "
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


def check_seeds(params: Params) -> None:
    """Every ``seed`` / ``split_seed`` key is a valid generator seed (else numpy fails mid-run)."""
    for section, body in params.to_dict().items():
        for key, value in body.items():
            if key.endswith("seed"):
                _check(
                    0 <= value < _SEED_LIMIT,
                    f"{section}.{key}={value} is not a valid seed; give an integer from 0 to {_SEED_LIMIT - 1}.",
                )


def check_data(params: Params) -> None:
    """``data``: a known dataset, OOD pool and teacher, and what a user's teacher needs."""
    d = params.data
    _check(
        d.dataset in DATASETS or d.dataset.startswith("folder:"),
        f"data.dataset={d.dataset!r} is unknown; valid datasets: {', '.join(DATASETS)}, or folder:PATH "
        "(PATH/train/<class>/ and PATH/test/<class>/ of PNG/JPEG images).",
    )
    teachers = teachers_for(d.dataset)
    _check(
        d.teacher in teachers or d.registry_teacher or d.module_target is not None or d.timm_arch is not None,
        f"data.teacher={d.teacher!r} does not exist for dataset {d.dataset!r}; valid teachers: {', '.join(teachers)}, "
        "a timm architecture (timm:NAME), a model in the MLflow registry (models:/NAME/VERSION or models:/NAME@ALIAS), "
        "or your own network's factory (module:PKG.MODULE:FUNCTION), with data.teacher_weights.",
    )
    _check_user_teacher(d)
    _check(0 < d.test_fraction < 1, f"data.test_fraction={d.test_fraction} must lie strictly between 0 and 1.")
    _check(
        d.ood_pool in OOD_POOLS or d.ood_pool.startswith("folder:"),
        f"data.ood_pool={d.ood_pool!r} is unknown; valid: {', '.join(OOD_POOLS)}, or folder:PATH (class sub-folders of images).",
    )


def check_sampling(params: Params) -> None:
    """``sample_few_shot``: shots, imbalance ratio and profile that give every class a shot."""
    s = params.sample_few_shot
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


def check_curation(params: Params) -> None:
    """``curate_ood``: a readable budget and a filter threshold in (0, 1]."""
    parse_budget(params.curate_ood.budget)
    _check(
        0 < params.curate_ood.near_id_threshold <= 1,
        f"curate_ood.near_id_threshold={params.curate_ood.near_id_threshold} must lie in (0, 1] (1 turns the filter off).",
    )


def check_teacher_training(params: Params) -> None:
    """``teacher``: positive epochs, batch size and learning rates."""
    t = params.teacher
    _check(t.epochs >= 1 and t.batch_size >= 1 and t.lr > 0, f"teacher: epochs, batch_size and lr must be positive (got {t}).")
    _check(t.adapt_epochs >= 0 and t.adapt_lr > 0, f"teacher.adapt_epochs must be >= 0 and adapt_lr > 0 (got {t}).")


def check_compression(params: Params) -> None:
    """``compress``: a known scheme and criterion, a ratio in (0, 1), a distillation student that fits the teacher."""
    d, c = params.data, params.compress
    _check(
        c.scheme in SCHEMES,
        f"compress.scheme={c.scheme!r} is unknown; valid schemes: {', '.join(SCHEMES)} (`fsmc methods` describes them).",
    )
    _check(c.importance in IMPORTANCES, f"compress.importance={c.importance!r} is unknown; valid: {', '.join(IMPORTANCES)}.")
    _check(c.round_to >= 0, f"compress.round_to={c.round_to} must be >= 0 (0: no rounding; 8 or 16: SIMD-friendly widths).")
    _check(c.allocation in ALLOCATIONS, f"compress.allocation={c.allocation!r} is unknown; valid: {', '.join(ALLOCATIONS)}.")
    _check(
        c.macs_fraction == 0 or 0 < c.macs_fraction < 1,
        f"compress.macs_fraction={c.macs_fraction} must lie strictly between 0 and 1 (the share of the teacher's MACs the "
        "student keeps), or be 0 (the MACs uniform pruning at compress.ratio keeps).",
    )
    _check(0 < c.ratio < 1, f"compress.ratio={c.ratio} must lie strictly between 0 and 1 (share of channels or weights removed).")
    _check(
        c.student_init in STUDENT_INITS,
        f"compress.student_init={c.student_init!r} is unknown; valid: {', '.join(STUDENT_INITS)}.",
    )
    # Checked whatever the scheme, as compress.importance is: a typo must not wait for scheme=distill to show.
    known_students = sorted({s for students in DISTILL_STUDENTS.values() for s in students})
    _check(
        c.student == "auto" or c.student in known_students,
        f"compress.student={c.student!r} is unknown; valid: auto, {', '.join(known_students)} (scheme=distill only).",
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
            not (c.student_init == "teacher" and pair in SCRATCH_ONLY_STUDENTS),
            f"compress.student_init='teacher' cannot start {pair[1]!r} from {pair[0]!r}: their blocks differ in type or "
            "layout, so no teacher block can be copied into the student. Set compress.student_init=scratch.",
        )
    _check(c.calibration_images >= 1, f"compress.calibration_images={c.calibration_images} must be at least 1.")


def check_recovery(params: Params) -> None:
    """``recover``: a known method that applies to the scheme, and every weight and count in range."""
    c, r = params.compress, params.recover
    _check(
        r.method in RECOVERY_METHODS,
        f"recover.method={r.method!r} is unknown; valid methods: {', '.join(RECOVERY_METHODS)} (`fsmc methods` describes them).",
    )
    _check(
        r.early_stopping in EARLY_STOPPING,
        f"recover.early_stopping={r.early_stopping!r} is unknown; valid: {', '.join(EARLY_STOPPING)}.",
    )
    _check(0 <= r.mu <= 1, f"recover.mu={r.mu} must lie in [0, 1] (weight of CD's correction loss; 1 - mu weighs imitation).")
    _check(r.steps >= 1, f"recover.steps={r.steps} must be at least 1.")
    _check(r.threads >= 0, f"recover.threads={r.threads} must be 0 (torch's own thread count) or a positive number of threads.")
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
    _check(r.lr >= 0, f"recover.lr={r.lr} must be positive, or 0 for the method's own rate (mir 0.1, the others 0.02).")
    _check(r.temperature > 0, f"recover.temperature={r.temperature} must be positive.")
    _check(0 <= r.alpha <= 1, f"recover.alpha={r.alpha} must lie in [0, 1].")
    _check(r.lambda_ood >= 0, f"recover.lambda_ood={r.lambda_ood} must be >= 0.")
    _check(0 < r.holdout_fraction < 1, f"recover.holdout_fraction={r.holdout_fraction} must lie strictly between 0 and 1.")
    _check(r.eval_every >= 1 and r.patience >= 1, "recover.eval_every and recover.patience must be at least 1.")
    reason = inapplicable_reason(c.scheme, r.method)
    _check(
        reason is None,
        f"recover.method={r.method!r} does not apply to compress.scheme={c.scheme!r}: {reason}. Methods that do: "
        + ", ".join(applicable_methods(c.scheme))
        + ".",
    )
    problems = configuration_problems(params)  # the chosen scheme's and method's own conditions
    _check(not problems, problems[0] if problems else "")


def check_evaluation(params: Params) -> None:
    """``evaluate``: at least one minority class, a non-negative test subset size."""
    _check(params.evaluate.minority_classes >= 1, "evaluate.minority_classes must be at least 1.")
    _check(params.evaluate.max_test_images >= 0, "evaluate.max_test_images must be >= 0 (0 means the whole test split).")


def check_shipping(params: Params) -> None:
    """``ship``: a known runtime and precision, a thread count and batch that can run, an agreement share."""
    sh = params.ship
    runtimes = ("auto", "openvino", "onnxruntime", "torch")
    _check(sh.runtime in runtimes, f"ship.runtime={sh.runtime!r} is unknown; valid runtimes: {', '.join(runtimes)}.")
    _check(
        sh.inference_precision in ("auto", "fp32"),
        f"ship.inference_precision={sh.inference_precision!r} is unknown; valid: auto (bf16 where native), fp32.",
    )
    _check(sh.threads >= 0, f"ship.threads={sh.threads} must be >= 0 (0: the faster of 1 and all cores, measured).")
    _check(sh.batch >= 1, f"ship.batch={sh.batch} must be at least 1.")
    _check(sh.timing_seconds > 0, f"ship.timing_seconds={sh.timing_seconds} must be positive (2.0: two seconds of timed calls).")
    _check(0 < sh.min_agreement <= 1, f"ship.min_agreement={sh.min_agreement} must lie in (0, 1] (0.98: 98 % of predictions).")


def check_target(params: Params) -> None:
    """``target`` (``fsmc tune``): a speed-up of at least 1x, a MACs share in (0, 1), a positive budget."""
    t = params.target
    _check(
        t.speedup == 0 or t.speedup >= 1,
        f"target.speedup={t.speedup} is below 1x: a student slower than its teacher needs no search. Ask for a speed-up of "
        "at least 1 (2.0: twice as fast), or 0 for no speed target.",
    )
    _check(
        t.macs == 0 or 0 < t.macs < 1,
        f"target.macs={t.macs} must lie strictly between 0 and 1 (0.4: the student keeps 40 % of the teacher's MACs), or "
        "be 0 for no MACs target.",
    )
    _check(t.batch >= 1, f"target.batch={t.batch} must be at least 1 (the images per timed call).")
    _check(t.budget_minutes > 0, f"target.budget_minutes={t.budget_minutes} must be positive (30: half an hour of search).")
    _check(1 <= t.levels <= 8, f"target.levels={t.levels} must lie in 1..8 (MACs levels of the allocation tried).")
    _check(
        t.long_factor == 0 or 2 <= t.long_factor <= 16,
        f"target.long_factor={t.long_factor} must be 0 (no third round) or lie in 2..16 (the third round's recovery, in "
        "multiples of recover.steps: 4 recovers the nearest misses four times as long).",
    )


def check_gate(params: Params) -> None:
    """``gate``: drops as fractions in [0, 1], a positive speed-up, a valid registry alias."""
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


def check_serving(params: Params) -> None:
    """``serve``: a deployment name, two 5-field crons, a known benchmark preset."""
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
    _check(sv.benchmark_preset in PRESETS, f"serve.benchmark_preset={sv.benchmark_preset!r} is unknown; valid presets: {', '.join(PRESETS)}.")


def check_tracking(params: Params) -> None:
    """``tracking``: names MLflow accepts, checked now because MLflow would refuse them only after the run trained."""
    t = params.tracking
    _check(
        bool(t.experiment.strip()) and t.experiment.isprintable(),
        f"tracking.experiment={t.experiment!r} is not a valid MLflow experiment name; give a non-empty name on one line (e.g. fsmc).",
    )
    _check(
        REGISTERED_NAME_PATTERN.match(t.registered_model) is not None,
        f"tracking.registered_model={t.registered_model!r} is not a valid registered model name; use letters, digits, "
        "'.', '_' and '-', starting with a letter or digit (e.g. fsmc-student), so models:/NAME/VERSION can name it.",
    )


SECTION_CHECKS = (
    check_seeds, check_data, check_sampling, check_curation, check_teacher_training, check_compression,
    check_recovery, check_evaluation, check_shipping, check_gate, check_target, check_serving, check_tracking,
)


def validate(params: Params) -> Params:
    """Check every value's range, section by section; return ``params`` unchanged or raise :class:`FsmcError`."""
    for check in SECTION_CHECKS:
        check(params)
    return params
