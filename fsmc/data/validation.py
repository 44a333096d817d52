"""Great Expectations suites on the few-shot and OOD manifests (ephemeral GX context).

Three suites, each run on a pandas frame:

* ``few_shot_manifest``: labels in range, every class present, ids unique, the
  recorded hash equals the bytes of the image it names, no image of the test
  split, no image shared with the OOD pool.
* ``few_shot_counts``: per-class counts equal the requested profile.
* ``ood_manifest``: ids and hashes unique, recorded hash equals the image
  bytes, no image equal to any in-distribution (train or test) image.
* ``image_arrays``: every referenced image has the expected shape, dtype and
  value range.

A failed expectation is reported with its column and a sample of the
offending values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from fsmc.errors import FsmcError

# GX is slow to import (~5 s); imported on first use so the CLI stays quick.
_gx_context = None


def _context():
    global _gx_context
    if _gx_context is None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        # GX logs an INFO line per ephemeral context; not news to a pipeline user. Its modules set their
        # own loggers' levels on import, so quieting the parent alone is not enough.
        for name in ["great_expectations", *[n for n in logging.root.manager.loggerDict if n.startswith("great_expectations.")]]:
            logging.getLogger(name).setLevel(logging.WARNING)
        _gx_context = gx.get_context(mode="ephemeral")
        # The per-validation "Calculating Metrics" bars would drown the pipeline's own output.
        _gx_context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return _gx_context


@dataclass
class SuiteResult:
    """Outcome of one suite: success plus the failing expectations, readable."""

    suite: str
    success: bool
    evaluated: int
    failures: list[dict[str, Any]] = field(default_factory=list)


def run_suite(name: str, frame: pd.DataFrame, expectations: list[Any]) -> SuiteResult:
    """Validate ``frame`` against ``expectations`` in a real GX suite named ``name``."""
    import great_expectations as gx

    context = _context()
    source_name = f"src_{name}"
    try:
        source = context.data_sources.get(source_name)
    except (KeyError, ValueError):
        source = context.data_sources.add_pandas(source_name)
    asset = source.add_dataframe_asset(f"asset_{len(source.assets)}")
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame})
    suite = gx.ExpectationSuite(name=name)
    for expectation in expectations:
        suite.add_expectation(expectation)
    outcome = batch.validate(suite)
    failures = []
    for result in outcome.results:
        if result.success:
            continue
        kwargs = {k: v for k, v in result.expectation_config.kwargs.items() if k not in ("batch_id", "value_set")}
        failures.append(
            {
                "expectation": result.expectation_config.type,
                "kwargs": {k: str(v) for k, v in kwargs.items()},
                "unexpected_count": result.result.get("unexpected_count"),
                "observed": str(result.result.get("observed_value", ""))[:200],
                "sample": [str(v) for v in (result.result.get("partial_unexpected_list") or [])[:5]],
            }
        )
    return SuiteResult(name, bool(outcome.success), len(outcome.results), failures)


def overlap_column(hashes: pd.Series, others: set[str]) -> pd.Series:
    """Each hash that is also in ``others``, else null: a suite expects the column all null.

    Membership is computed here with pandas, not by handing GX a value set of 60,000 hashes (GX
    re-serialises an expectation's arguments at every metric it resolves: 100 s instead of 1).
    """
    return hashes.where(hashes.isin(others), None)


def few_shot_manifest_suite(num_classes: int) -> list[Any]:
    """Expectations on the few-shot manifest frame (plus ``actual_sha256``, ``actual_label`` and the
    :func:`overlap_column` columns ``also_in_test_split`` and ``also_in_ood_manifest``)."""
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToNotBeNull(column="index"),
        gxe.ExpectColumnValuesToBeUnique(column="index"),
        gxe.ExpectColumnValuesToBeBetween(column="label", min_value=0, max_value=num_classes - 1),
        gxe.ExpectColumnDistinctValuesToEqualSet(column="label", value_set=list(range(num_classes))),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="sha256", column_B="actual_sha256"),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="label", column_B="actual_label"),
        gxe.ExpectColumnValuesToBeNull(column="also_in_test_split"),
        gxe.ExpectColumnValuesToBeNull(column="also_in_ood_manifest"),
    ]


def counts_suite() -> list[Any]:
    """Expectations on the per-class counts frame (``label, observed, expected``)."""
    import great_expectations.expectations as gxe

    return [gxe.ExpectColumnPairValuesToBeEqual(column_A="observed", column_B="expected")]


def ood_manifest_suite(excluded_labels: set[int]) -> list[Any]:
    """Expectations on the OOD manifest frame (plus ``actual_sha256`` and the :func:`overlap_column`
    column ``also_in_id_data``)."""
    import great_expectations.expectations as gxe

    expectations = [
        gxe.ExpectColumnValuesToBeUnique(column="index"),
        gxe.ExpectColumnValuesToBeUnique(column="sha256"),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="sha256", column_B="actual_sha256"),
        gxe.ExpectColumnValuesToBeNull(column="also_in_id_data"),
    ]
    if excluded_labels:  # pool classes that are really in-distribution classes
        expectations.append(gxe.ExpectColumnValuesToNotBeInSet(column="pool_label", value_set=sorted(excluded_labels)))
    return expectations


def image_arrays_suite(height: int, width: int, channels: int, pixel_max: int) -> list[Any]:
    """Expectations on per-image statistics (shape, dtype, value range)."""
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToBeInSet(column="height", value_set=[height]),
        gxe.ExpectColumnValuesToBeInSet(column="width", value_set=[width]),
        gxe.ExpectColumnValuesToBeInSet(column="channels", value_set=[channels]),
        gxe.ExpectColumnValuesToBeInSet(column="dtype", value_set=["uint8"]),
        gxe.ExpectColumnValuesToBeBetween(column="min", min_value=0, max_value=pixel_max),
        gxe.ExpectColumnValuesToBeBetween(column="max", min_value=0, max_value=pixel_max),
    ]


class ValidationFailed(FsmcError):
    """Raised when any suite fails; the message lists the failing expectations."""


def raise_on_failure(results: list[SuiteResult]) -> None:
    """Raise :class:`ValidationFailed` listing every failed expectation, if any."""
    failed = [r for r in results if not r.success]
    if not failed:
        return
    lines = []
    for result in failed:
        for failure in result.failures:
            lines.append(
                f"  [{result.suite}] {failure['expectation']} {failure['kwargs']}: "
                f"{failure['unexpected_count']} unexpected, e.g. {failure['sample'] or failure['observed']}"
            )
    raise ValidationFailed("Data validation failed; the failing expectations are:\n" + "\n".join(lines))
