"""Prefect flows that chain the stage tasks (``tasks/``) into pipelines."""

import tasks  # noqa: F401  (applies the Prefect/MLflow environment defaults before prefect is imported)
