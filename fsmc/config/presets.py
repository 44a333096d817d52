"""The benchmark presets: each seed paper's experiment as a grid of ``--set`` overrides.

A preset is a base (overrides every cell shares) and ordered axes; each axis
level is a label (what the table prints) and the overrides it adds. Cells are
the product of the axes (:mod:`fsmc.benchmark.grid`). The ``seed`` axis is
averaged over in the tables; every other axis is a table column.
"""

from __future__ import annotations

from dataclasses import dataclass

from fsmc.errors import FsmcError


@dataclass(frozen=True)
class Level:
    """One value of an axis: its label and the parameter overrides it means."""

    label: str
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class Preset:
    """A named grid: shared overrides, axes, and the cell the targets are quoted on."""

    name: str
    summary: str
    base: tuple[str, ...]
    axes: tuple[tuple[str, tuple[Level, ...]], ...]
    headline: tuple[tuple[str, str], ...] = ()


def _methods(*names: str) -> tuple[Level, ...]:
    return tuple(Level(name, (f"recover.method={name}",)) for name in names)


def _seeds(*seeds: int) -> tuple[Level, ...]:
    # A seed redraws the few-shot set and OOD pool and reorders training: the paper's repeats.
    return tuple(Level(str(s), (f"sample_few_shot.seed={s}", f"curate_ood.seed={s}", f"recover.seed={s}")) for s in seeds)


_OE = (Level("base", ("recover.oe=false",)), Level("+oe", ("recover.oe=true",)))


def _imbalanced(k_max: int, rho: float) -> Level:
    label = f"K={k_max}" if rho == 1 else f"exp K_max={k_max} rho={rho:g}"
    return Level(label, (f"sample_few_shot.k_max={k_max}", f"sample_few_shot.imbalance_ratio={rho}", "sample_few_shot.profile=exp"))


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="smoke",
            summary="embedded digits, channel pruning, kd and mir each with and without OE, 2 seeds (CI)",
            base=("recover.steps=60", "teacher.epochs=15"),
            axes=(
                ("scheme", (Level("channel", ("compress.scheme=channel",)),)),
                ("budget", (_imbalanced(20, 10),)),
                ("method", _methods("kd", "mir")),
                ("oe", _OE),
                ("seed", _seeds(0, 1)),
            ),
            headline=(("method", "mir"), ("oe", "+oe")),
        ),
        Preset(
            name="paper-cifar10",
            summary="OE-FSMC / CD / MiR setting: ResNet-56 (JPEG-adapted), 50 % inner-channel L1 pruning, "
            "balanced K=10 and exp K_max=50 with rho 10 and 50, bp/kd/fskd/cd/mir each with and without OE, 3 seeds",
            base=(
                "data.dataset=cifar10",
                "data.teacher=resnet56-jpeg",
                "compress.scheme=channel",
                "compress.importance=l1",
                "compress.ratio=0.5",
            ),
            axes=(
                ("scheme", (Level("channel", ()),)),
                ("budget", (_imbalanced(10, 1), _imbalanced(50, 10), _imbalanced(50, 50))),
                ("method", _methods("bp", "kd", "fskd", "cd", "mir")),
                ("oe", _OE),
                ("seed", _seeds(0, 1, 2)),
            ),
            headline=(("budget", "exp K_max=50 rho=10"), ("method", "mir"), ("oe", "+oe")),
        ),
        Preset(
            name="robustness-cifar10",
            summary="Ali et al. 2024: ResNet-20 and ResNet-56, imbalance rho 1/10/50/100 at K_max=100, channel pruning, "
            "int8 QAT and KD to a smaller student, each recovered with kd; gaps to the uncompressed teacher",
            base=("data.dataset=cifar10", "recover.method=kd", "recover.oe=false"),
            axes=(
                ("teacher", (Level("resnet20-jpeg", ("data.teacher=resnet20-jpeg",)), Level("resnet56-jpeg", ("data.teacher=resnet56-jpeg",)))),
                (
                    "scheme",
                    (
                        Level("channel", ("compress.scheme=channel", "compress.ratio=0.5")),
                        Level("int8-qat", ("compress.scheme=int8-qat",)),
                        Level("distill", ("compress.scheme=distill",)),
                    ),
                ),
                ("budget", tuple(_imbalanced(100, rho) for rho in (1, 10, 50, 100))),
                ("seed", _seeds(0)),
            ),
            headline=(("teacher", "resnet56-jpeg"), ("scheme", "channel"), ("budget", "exp K_max=100 rho=10")),
        ),
    )
}


def get_preset(name: str) -> Preset:
    """The preset ``name``, or a one-paragraph error listing the presets."""
    if name not in PRESETS:
        listing = "; ".join(f"{p.name} ({p.summary})" for p in PRESETS.values())
        raise FsmcError(f"Unknown benchmark preset {name!r}. Valid presets: {listing}.")
    return PRESETS[name]
