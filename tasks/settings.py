"""Environment defaults that keep Prefect and MLflow local, offline and quiet.

They must be set before ``prefect`` is imported, so this module imports neither.
Every value is a default: a variable the user already set wins.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_TRACKING_DIR = Path("mlruns")


def apply_defaults() -> None:
    """Set the project's defaults for Prefect and MLflow environment variables."""
    defaults = {
        # Per-project Prefect database and results instead of the home directory.
        "PREFECT_HOME": str(Path.cwd() / ".prefect"),
        # Telemetry lookups fail offline and stall the temporary server's start by ~15 s.
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "GIT_PYTHON_REFRESH": "quiet",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else the project's SQLite store under ``mlruns/``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(Path.cwd() / DEFAULT_TRACKING_DIR / 'mlflow.db')}"


def artifact_root() -> str:
    """Where new experiments keep artifacts when the store is local: ``mlruns/artifacts``."""
    return (Path.cwd() / DEFAULT_TRACKING_DIR / "artifacts").as_uri()
