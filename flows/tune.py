"""Flow ``tune``: the fastest student that meets the user's target, found by successive halving on Dask.

1. The shared stages (few-shot set, teacher, OOD pool, validation) once; the target is checked against the
   teacher (a speed-up no student could reach, a budget too short for one candidate: refused).
2. Candidates (:mod:`fsmc.tuning.candidates`): per-layer damage allocations at a few MACs levels, int8, block
   dropping, distillation. Each is compressed (the damage table is measured once and cached); MACs prefilter.
3. Short recovery for every candidate, fanned out as Prefect tasks on the ``DaskTaskRunner``; then each
   candidate's runtime is chosen on this machine, one at a time (parallel timings would skew each other), and
   every candidate's speed-up at ``target.batch`` is measured in one call, all of them and the teacher timed
   alternately (:mod:`fsmc.tuning.side_by_side`).
4. Full recovery for the most promising half, as many as the budget fits; then a long recovery
   (``target.long_factor`` × the steps) for the nearest accuracy misses faster than anything within the limits.
5. The fastest candidate within every limit (the gate's own) is registered through the ``compress`` flow and
   gets the gate's alias; when none passes, the closest is registered without it and the message says by how
   much each limit was missed. Every candidate is a nested MLflow run; the Pareto front is a plot and a table.

Every candidate is an ordinary pipeline run in its own folder: a killed search resumes from the stage cache
and each candidate's saved latency, and the chosen settings are written as a params file that ``fsmc run
--params`` and ``dvc repro`` reproduce.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.futures import as_completed

from flows.benchmark import cell_task, dask_task_runner, prepare_task
from flows.compress import compress_flow
from fsmc.atomic import read_json, write_json, write_text
from fsmc.benchmark.cell import architecture_latency
from fsmc.config import METHOD_DECLARATIONS, Params, dump_params, params_from_dict
from fsmc.data.images import to_tensor
from fsmc.errors import FsmcError
from fsmc.gate import accuracy_drop
from fsmc.models.checkpoint import load_checkpoint
from fsmc.pipeline import run_pipeline
from fsmc.stage_cache import recorded_seconds
from fsmc.stages.reading import few_shot_set
from fsmc.tuning.candidates import FALLBACK_REACH, Candidate, candidates_for, short_steps
from fsmc.tuning.feasibility import check_feasible, is_residual
from fsmc.tuning.plot import pareto_plot
from fsmc.tuning.rounds import full_round_entrants, long_round_entrants, round_size, threads_each
from fsmc.tuning.selection import MACS_SLACK, choose, judge, miss_message, pareto_front
from fsmc.tuning.shipped_accuracy import accuracy_as_shipped
from fsmc.tuning.side_by_side import candidates_side_by_side
from fsmc.workspace import Workspace
from tasks.tune_tracking import log_tune, publish_tune_artifacts

# What a row keeps of a candidate's latency (fsmc.benchmark.cell.architecture_latency).
LATENCY_KEYS = ("speedup", "speedup_b1", "student_ms", "teacher_ms", "deployment_speedup_b1", "runtime", "runtime_choice")


def gated(params: Params) -> Params:
    """``params`` with the gate timing at ``target.batch`` and asking ``target.speedup``: the limits are the gate's own."""
    t = params.target
    gate = dataclasses.replace(params.gate, latency_batch=t.batch, min_speedup=t.speedup or params.gate.min_speedup)
    return dataclasses.replace(params, gate=gate)


def _prefilter(candidate: Candidate, summary: dict, params: Params) -> str:
    """Why the MACs alone rule ``candidate`` out (''  when they do not): width and depth run no faster than their MACs.

    A speed-up target keeps candidates down to :data:`FALLBACK_REACH` of it: when the target proves unreachable, the
    fastest student within the accuracy limits is then measured, named in the message and registered as the closest.
    """
    t, ratio = params.target, summary["macs_ratio"]
    if t.macs and ratio > t.macs * (1 + MACS_SLACK):
        return f"keeps x{ratio:.3f} of the teacher's MACs, above the x{t.macs:g} asked"
    if t.speedup and "int8" not in summary["scheme"] and 1 / ratio < t.speedup * FALLBACK_REACH:
        return (
            f"its MACs (x{ratio:.3f}) allow at most x{1 / ratio:.2f}, below x{t.speedup * FALLBACK_REACH:.2f} "
            f"({FALLBACK_REACH:.0%} of the x{t.speedup:g} asked, the slowest a fallback may be)"
        )
    return ""


def _on_threads(params: Params, threads: int) -> Params:
    """``params`` recovering on ``threads`` torch threads: the chosen params file must name the count its student was
    recovered with, as the weights are bit-identical only at the same count."""
    return dataclasses.replace(params, recover=dataclasses.replace(params.recover, threads=threads))


# The stages a round computes anew for a candidate (the earlier ones are shared by every round of it).
ROUND_STAGES = ("recover", "evaluate")


def _round_seconds(params: Params, ws: Workspace, wall_seconds: float) -> float:
    """What the candidate's round costs when computed: its stages' recorded seconds, even when restored from the cache.

    A resumed search finds its finished rounds in the stage cache in a second or two; budgeting the next round by
    that wall time admitted a 3,200-step round that could not end in time (issue 33).
    """
    recorded = [recorded_seconds(stage, params, ws) for stage in ROUND_STAGES]
    return wall_seconds if None in recorded else round(sum(recorded), 3)


def _row(candidate: Candidate, round_name: str, params: Params, cell: dict, latency: dict, summary: dict, ws: Workspace) -> dict:
    """One candidate after one round, judged on its accuracy as shipped (in ``latency``'s runtime), as the gate judges it."""
    shipped = accuracy_as_shipped(params, ws.student_model, ws.metrics, latency["runtime_choice"])
    return {
        "candidate_id": candidate.candidate_id,
        "name": candidate.name,
        "settings": list(candidate.settings),
        "round": round_name,
        "steps": params.recover.steps,
        "threads": params.recover.threads,
        "scheme": summary["scheme"],
        "macs_ratio": round(summary["macs_ratio"], 6),
        "top1": shipped["top1"],
        "worst_class_acc": shipped["worst_class_acc"],
        "top1_drop": accuracy_drop(cell["teacher_top1"], shipped["top1"]),
        "worst_class_drop": accuracy_drop(cell["teacher_worst_class_acc"], shipped["worst_class_acc"]),
        "top1_fp32": cell["student_top1"],  # torch fp32, as the run's evaluate stage measured it
        "worst_class_acc_fp32": cell["student_worst_class_acc"],
        **{key: latency[key] for key in LATENCY_KEYS},
        "wall_seconds": cell["wall_seconds"],
        "round_seconds": _round_seconds(params, ws, cell["wall_seconds"]),
        "all_reused": cell["all_reused"],
        "stages_reused": cell["stages_reused"],
    }


def _settled(futures: dict, doing: str, left_out: list[dict]) -> dict[str, Any]:
    """Each future's result by candidate id; a candidate whose task failed joins ``left_out`` with the reason.

    One candidate failing (a scheme this teacher cannot take, a runtime that cannot run it) must not cost the
    search the others' finished work.
    """
    results = {}
    for future in as_completed(list(futures)):
        candidate = futures[future]
        try:
            results[candidate.candidate_id] = future.result()
        except Exception as error:  # noqa: BLE001 - reported per candidate, the search goes on
            left_out.append({"name": candidate.name, "reason": f"{doing} failed: {type(error).__name__}: {error}"})
    return results


def _run_round(
    round_name: str, entries: list[tuple[Candidate, Params, Path]], reuse: bool, threads: int, left_out: list[dict]
) -> dict[str, dict]:
    """Recover and evaluate each candidate as a Prefect task on the flow's Dask runner; rows by candidate id."""
    futures = {cell_task.submit(params, str(folder), reuse, threads): candidate for candidate, params, folder in entries}
    return _settled(futures, f"recovery ({round_name} round)", left_out)


def _latency(params: Params, folder: Path, cache: Path, teacher_choice: dict | None) -> dict:
    """The candidate's runtime and speed-up as shipped (saved beside it: a resumed search does not time it again).

    ``teacher_choice``: the teacher's fastest configuration, as an earlier candidate's timing chose it (None: choose it).
    """
    key = params.to_dict()["compress"] | {"batch": params.gate.latency_batch}
    saved = read_json(cache) if cache.is_file() else {}
    if saved.get("params") == key and "teacher_runtime_choice" in saved["latency"]:
        return saved["latency"]
    latency = architecture_latency(params, Workspace(folder), teacher_choice)
    write_json(cache, {"params": key, "latency": latency})
    return latency


def _time_side_by_side(rows: list[dict], by_id: dict, teacher_choice: dict | None, base: Workspace, p: Params) -> None:
    """Every row's speed-up measured again, all candidates and the teacher alternately in one call (in place).

    Each candidate was timed on its own when its runtime was chosen; the teacher's time wanders between those
    calls on a shared machine (:mod:`fsmc.tuning.side_by_side`), and the rounds and the choice rank by speed-up.
    """
    students = {r["candidate_id"]: (Workspace(by_id[r["candidate_id"]][2] / "short").student_model, r["runtime_choice"]) for r in rows}
    timed = candidates_side_by_side(p, base.teacher_model, students, teacher_choice)
    for row in rows:
        row.update({key: timed[row["candidate_id"]][key] for key in ("speedup", "teacher_ms", "student_ms")})
        if p.target.batch == 1:
            row["speedup_b1"] = row["speedup"]


def _next_round(
    round_name: str, steps: int, picked: list[dict], by_id: dict, p: Params, reuse: bool, threads: int, left_out: list[dict]
) -> list[dict]:
    """Recover the ``picked`` rows' candidates again for ``steps``; their new rows (same architecture: same latency)."""
    entries = [(by_id[r["candidate_id"]][0], by_id[r["candidate_id"]][2]) for r in picked]
    params = {c.candidate_id: _on_threads(c.params(p, steps), threads) for c, _ in entries}
    cells = _run_round(round_name, [(c, params[c.candidate_id], folder / round_name) for c, folder in entries], reuse, threads, left_out)
    earlier = {r["candidate_id"]: r for r in picked}
    return [
        _row(
            c, round_name, params[c.candidate_id], cells[c.candidate_id], {k: earlier[c.candidate_id][k] for k in LATENCY_KEYS},
            by_id[c.candidate_id][3], Workspace(folder / round_name),
        )
        for c, folder in entries
        if c.candidate_id in cells
    ]


@flow(name="tune", task_runner=dask_task_runner(None, os.cpu_count() or 1))
def tune_flow(params: dict[str, dict[str, Any]], out_dir: str, reuse: bool = True, torch_threads: int = 1, workers: int = 1) -> dict[str, Any]:
    """Search for the fastest student meeting ``target`` and the gate's limits; register it.

    Args:
        params: ``{section: {key: value}}`` with a ``target.speedup`` or ``target.macs``.
        out_dir: folder for the candidates, the front, the chosen params file and the chosen run.
        reuse: take finished stages from the stage cache (a killed search resumes).
        torch_threads: torch threads per task (cores / Dask workers).
        workers: Dask workers running candidates side by side (for the budget's arithmetic).

    Returns:
        The chosen student (registered version, speed-up, drops), whether it passed, every candidate, the front.
    """
    started = time.perf_counter()
    p = gated(params_from_dict(params))
    out = Path(out_dir)
    deadline = started + p.target.budget_minutes * 60

    base = Workspace(out / "shared")
    run_pipeline(p, base, reuse, stop_before="compress")
    teacher, _, _ = load_checkpoint(base.teacher_model)
    _, _, few = few_shot_set(p, base)
    images = to_tensor(few.images, few.pixel_max)
    check_feasible(p, teacher, images)

    left_out, entries = [], []
    short = short_steps(p)
    for candidate in candidates_for(p, is_residual(teacher, images[:1])):
        try:
            entries.append((candidate, _on_threads(candidate.params(p, short), torch_threads), out / "candidates" / candidate.candidate_id))
        except FsmcError as error:  # a scheme the method cannot follow, say
            left_out.append({"name": candidate.name, "reason": str(error)})

    # Compress every candidate; the first damage allocation alone, so the others find its damage table cached.
    features = [METHOD_DECLARATIONS[p.recover.method].needs_features]
    first = [e for e in entries if "compress.allocation=damage" in e[0].settings][:1]
    prepared = set()
    for group, threads in ((first, os.cpu_count() or 1), ([e for e in entries if e not in first], torch_threads)):  # alone: every core
        futures = {prepare_task.submit(params, str(folder / "short"), features, threads): candidate for candidate, params, folder in group}
        prepared |= set(_settled(futures, "compressing", left_out))
    kept = []
    for candidate, params, folder in entries:
        if candidate.candidate_id not in prepared:
            continue
        summary = read_json(Workspace(folder / "short").compress_summary)
        reason = _prefilter(candidate, summary, p)
        if reason:
            left_out.append({"name": candidate.name, "reason": reason, "macs_ratio": round(summary["macs_ratio"], 6)})
        else:
            kept.append((candidate, params, folder, summary))
    if not kept:
        reasons = "; ".join(f"{x['name']}: {x['reason']}" for x in left_out)
        raise FsmcError(
            f"No candidate can reach the target by its MACs: {reasons}. "
            "Ask for a smaller speed-up or a larger MACs share."
        )

    short_cells = _run_round("short", [(c, params, folder / "short") for c, params, folder, _ in kept], reuse, torch_threads, left_out)
    rows, teacher_choice = [], None
    for candidate, params, folder, summary in kept:
        if candidate.candidate_id not in short_cells:
            continue
        try:
            latency = _latency(params, folder / "short", folder / "latency.json", teacher_choice)
        except Exception as error:  # noqa: BLE001 - a runtime that cannot time this one candidate is not the search's end
            left_out.append({"name": candidate.name, "reason": f"timing failed: {type(error).__name__}: {error}"})
            continue
        rows.append(_row(candidate, "short", params, short_cells[candidate.candidate_id], latency, summary, Workspace(folder / "short")))
        teacher_choice = latency["teacher_runtime_choice"]
    if not rows:
        raise FsmcError("Every candidate failed: " + "; ".join(f"{x['name']}: {x['reason']}" for x in left_out) + ".")

    by_id = {c.candidate_id: (c, params, folder, summary) for c, params, folder, summary in kept}
    _time_side_by_side(rows, by_id, teacher_choice, base, p)
    if short < p.recover.steps:
        size = round_size(rows, deadline - time.perf_counter(), workers, p.recover.steps / short)
        picked = full_round_entrants(rows, p, size, workers)
        rows += _next_round("full", p.recover.steps, picked, by_id, p, reuse, torch_threads * threads_each(len(picked), workers), left_out)
    full_rows = [r for r in rows if r["steps"] == p.recover.steps]
    if p.target.long_factor and full_rows:
        picked = long_round_entrants(full_rows, p)
        size = round_size(picked, deadline - time.perf_counter(), workers, p.target.long_factor)
        threads = torch_threads * threads_each(size, workers)  # a lone long candidate gets the idle worker's cores too
        rows += _next_round("long", p.recover.steps * p.target.long_factor, picked[:size], by_id, p, reuse, threads, left_out)

    for row in rows:
        verdict = judge(row, p)
        row["passed"], row["misses"] = verdict.passed, {k: round(v, 6) for k, v in verdict.misses.items()}
    chosen, passed = choose(rows, p)
    chosen_params = _on_threads(by_id[chosen["candidate_id"]][0].params(p, chosen["steps"]), chosen["threads"])
    params_file = out / "params.yaml"
    write_text(params_file, dump_params(chosen_params))
    front = {"top1": pareto_front(rows, "top1"), "worst_class_acc": pareto_front(rows, "worst_class_acc")}
    plot = pareto_plot(out / "pareto.png", rows, chosen, p)
    write_json(out / "candidates.json", {"candidates": rows, "left_out": left_out})

    registered = compress_flow(params=chosen_params.to_dict(), workspace=str(out / "chosen"), reuse=reuse)
    message = miss_message(chosen, passed, rows, p)
    parent = log_tune(p, rows, chosen, registered, [plot, out / "candidates.json", params_file], message)
    publish_tune_artifacts(rows, chosen, passed, message, front)
    return {
        "registered_model": registered["registered_model"],
        "passed": passed,
        "alias": registered["promotion"]["alias"] if registered["promotion"]["passed"] else None,
        "gate": {k: registered["promotion"][k] for k in ("passed", "reasons")},
        "chosen": chosen,
        "batch": p.target.batch,
        "speedup": chosen["speedup"],
        "top1_drop": chosen["top1_drop"],
        "worst_class_drop": chosen["worst_class_drop"],
        "deployment_speedup_b1": chosen["deployment_speedup_b1"],
        "message": message,
        "candidates": rows,
        "left_out": left_out,
        "pareto": {k: [r["name"] + f" ({r['round']})" for r in v] for k, v in front.items()},
        "params_file": str(params_file),
        "pareto_plot": str(plot),
        "workspace": registered["workspace"],
        "mlflow_run_id": parent,
        "wall_seconds": round(time.perf_counter() - started, 3),
    }
