"""Expand a preset into cells: one validated parameter set per combination of axis levels."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path

from fsmc.config import Params, load_params
from fsmc.config.presets import Preset
from fsmc.errors import FsmcError


@dataclass(frozen=True)
class Cell:
    """One experiment of the grid: its axis labels and its validated parameters."""

    labels: dict[str, str]
    overrides: tuple[str, ...]
    params: Params

    @property
    def cell_id(self) -> str:
        """Stable short id of the overrides (the cell's folder name)."""
        return hashlib.sha256("\n".join(self.overrides).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Grid:
    """The cells to run and the combinations left out (with why)."""

    preset: Preset
    cells: list[Cell]
    skipped: list[tuple[dict[str, str], str]]


def _parse_only(preset: Preset, only: list[str]) -> dict[str, set[str]]:
    axes = dict(preset.axes)
    wanted: dict[str, set[str]] = {}
    for item in only:
        axis, sep, label = item.partition("=")
        if not sep or axis not in axes:
            raise FsmcError(f"--only {item!r} is not AXIS=VALUE with a known axis; the axes of {preset.name} are: {', '.join(axes)}.")
        labels = [level.label for level in axes[axis]]
        if label not in labels:
            raise FsmcError(f"--only {item!r}: {axis} has no value {label!r} in {preset.name}; valid: {', '.join(labels)}.")
        wanted.setdefault(axis, set()).add(label)
    return wanted


def expand(preset: Preset, params_file: Path | None, only: list[str] = (), extra: list[str] = ()) -> Grid:
    """All cells of ``preset`` (restricted by ``only``), each validated.

    Args:
        preset: the grid.
        params_file: params.yaml the overrides apply to (None: the built-in defaults).
        only: ``AXIS=VALUE`` filters; several values of one axis are alternatives.
        extra: ``--set`` overrides for every cell, applied last.

    Raises:
        FsmcError: an unknown axis or value in ``only``, or no cell left to run.
    """
    wanted = _parse_only(preset, list(only))
    names = [axis for axis, _ in preset.axes]
    cells, skipped = [], []
    for levels in itertools.product(*(levels for _, levels in preset.axes)):
        labels = {axis: level.label for axis, level in zip(names, levels, strict=True)}
        if any(labels[axis] not in allowed for axis, allowed in wanted.items()):
            continue
        overrides = (*preset.base, *(o for level in levels for o in level.overrides), *extra)
        try:
            params = load_params(params_file, list(overrides))
        except FsmcError as error:  # e.g. a method that does not apply to a scheme
            skipped.append((labels, str(error)))
            continue
        cells.append(Cell(labels, overrides, params))
    if not cells:
        why = f" Left out: {skipped[0][1]}" if skipped else ""
        raise FsmcError(
            f"The grid of preset {preset.name} with --only {' '.join(only) or '(none)'} has zero cells to run.{why} "
            "Loosen --only, or pick values that exist together."
        )
    return Grid(preset, cells, skipped)
