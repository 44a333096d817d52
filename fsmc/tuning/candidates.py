"""The students a target calls for: per-layer allocations at a few MACs levels, and the other schemes that apply.

Every candidate is the user's params with a few ``compress`` (and ``recover.steps``) keys changed, so each is
an ordinary pipeline run: its stages land in the stage cache (a killed search resumes), and the chosen one is
reproduced by ``fsmc run --params`` on the params file the search writes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from fsmc.config import DISTILL_STUDENTS, Params, params_from_dict, parse_overrides

# The allocation's MACs levels for a speed-up target span this range of kept MACs (ResNet inner channels at
# 75 % removed, the largest ratio the sensitivity table measures, keep about a quarter of the MACs).
LEVEL_RANGE = (0.7, 0.3)
# Depth is what pays at batch 1 (issue 32); on the headline ResNet-56 50 % of the blocks gave x1.56 for 1.1 points
# and 70 % x2.27 for 3.9, so the grid is finer between them.
BLOCK_DROP_RATIOS = (0.3, 0.5, 0.6, 0.7)
# Block dropping then int8: int8 pays at large batches on VNNI / AMX (x3.6 at batch 64), hardly against OpenVINO
# bf16 at batch 1: one ratio, the one that lost least at a useful depth.
BLOCK_DROP_INT8_RATIOS = (0.5,)
# A speed-up target keeps candidates whose MACs allow at least this share of it: when nothing reaches the target, the
# fastest student within the accuracy limits below it is measured and named (headline cell: x2.0 asked, block-drop
# 50 % at x1.54 within the limits was left out by MACs and never named).
FALLBACK_REACH = 0.75
# Share of the recovery steps the first round gives every candidate (successive halving: the rest get all).
SHORT_FRACTION = 0.25


@dataclass(frozen=True)
class Candidate:
    """One student to try: a readable name and the ``section.key=value`` settings that make it."""

    name: str
    settings: tuple[str, ...]

    @property
    def candidate_id(self) -> str:
        """Stable short id of the settings (the candidate's folder name)."""
        return hashlib.sha256("\n".join(self.settings).encode()).hexdigest()[:12]

    def params(self, base: Params, steps: int | None = None) -> Params:
        """``base`` with this candidate's settings (and ``recover.steps``, if given), validated."""
        raw = base.to_dict()
        for section, values in parse_overrides(list(self.settings)).items():  # parsed and typed as --set is
            raw[section].update(values)
        if steps is not None:
            raw["recover"]["steps"] = steps
        return params_from_dict(raw)


def macs_levels(count: int) -> list[float]:
    """``count`` kept-MACs fractions across :data:`LEVEL_RANGE`, most kept first."""
    high, low = LEVEL_RANGE
    return [round(float(level), 2) for level in np.linspace(high, low, count)] if count > 1 else [round((high + low) / 2, 2)]


def candidates_for(params: Params, residual: bool) -> list[Candidate]:
    """The candidates ``params.target`` calls for on this teacher.

    A MACs target is met by construction by the allocation at that level (in float and in int8); a speed-up
    target is looked for across :func:`macs_levels`, block dropping (residual teachers), the allocation's
    middle level in int8, block dropping then int8, and distillation into the zoo's smaller architecture, when the teacher has one.
    """
    t = params.target
    channel = ("compress.scheme=channel", "compress.allocation=damage")
    int8 = ("compress.scheme=channel+int8-ptq", "compress.allocation=damage")
    if t.macs:
        return [
            Candidate(f"channel MACs x{t.macs:g}", (*channel, f"compress.macs_fraction={t.macs}")),
            Candidate(f"channel+int8 MACs x{t.macs:g}", (*int8, f"compress.macs_fraction={t.macs}")),
        ]
    levels = macs_levels(t.levels)
    found = [Candidate(f"channel MACs x{level:g}", (*channel, f"compress.macs_fraction={level}")) for level in levels]
    middle = levels[len(levels) // 2]
    found.append(Candidate(f"channel+int8 MACs x{middle:g}", (*int8, f"compress.macs_fraction={middle}")))
    if residual:
        found += [Candidate(f"block-drop {ratio:.0%}", ("compress.scheme=block-drop", f"compress.ratio={ratio}")) for ratio in BLOCK_DROP_RATIOS]
        found += [
            Candidate(f"block-drop+int8 {ratio:.0%}", ("compress.scheme=block-drop+int8-ptq", f"compress.ratio={ratio}"))
            for ratio in BLOCK_DROP_INT8_RATIOS
        ]
    students = DISTILL_STUDENTS.get(params.data.teacher, ())
    if students:
        found.append(Candidate(f"distill {students[0]}", ("compress.scheme=distill", f"compress.student={students[0]}")))
    return found


def short_steps(params: Params) -> int:
    """Recovery steps of the first round: :data:`SHORT_FRACTION` of ``recover.steps``, at least one."""
    return max(1, round(params.recover.steps * SHORT_FRACTION))
