"""Environment defaults that keep Prefect and MLflow local, offline and quiet.

They must be set before ``prefect`` is imported, so this module imports neither.
Every value is a default: a variable the user already set wins.
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

DEFAULT_TRACKING_DIR = Path("mlruns")


def tracking_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean "the tracking store did not take it" (not a bug, not bad input)."""
    # Imported here: this module must not import mlflow before the defaults above are set.
    from mlflow.exceptions import MlflowException
    from requests import RequestException

    return (MlflowException, RequestException, ConnectionError, TimeoutError)


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
        # MLflow's HTTP client retries 7 times with doubling back-off (minutes) by default; Prefect's task
        # retries already cover a briefly unreachable server, so fail each attempt within seconds.
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
        "GIT_PYTHON_REFRESH": "quiet",
        # Dask's scheduler and workers log every start and stop at INFO.
        "DASK_LOGGING__DISTRIBUTED": "warning",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else the project's SQLite store under ``mlruns/``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(Path.cwd() / DEFAULT_TRACKING_DIR / 'mlflow.db')}"


# Local stores this process has already created or migrated (once per process is enough).
_PREPARED_STORES: set[str] = set()


def use_tracking_store() -> str:
    """Point MLflow at :func:`tracking_uri`; a local SQLite store is created (or migrated) by one process at a time.

    Why: two runs started at once on a new project both create the store's tables, and MLflow's
    migrations collide ("table _alembic_tmp_tags already exists"); the second now waits for the first.
    """
    # Imported here: this module must not import mlflow before the defaults above are set.
    import mlflow
    from filelock import FileLock

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    if uri.startswith("sqlite:///") and uri not in _PREPARED_STORES:
        database = Path(uri.removeprefix("sqlite:///"))
        database.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{database}.lock"):
            mlflow.MlflowClient().search_experiments(max_results=1)  # the store's first use creates its tables
        _PREPARED_STORES.add(uri)
    return uri



def artifact_root() -> str:
    """Where new experiments keep artifacts when the store is local: ``mlruns/artifacts``."""
    return (Path.cwd() / DEFAULT_TRACKING_DIR / "artifacts").as_uri()


def health_error(url: str, timeout: float) -> str | None:
    """Why the server at ``url`` does not answer its ``/health`` endpoint (MLflow and Prefect both serve one), or None."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as response:
            response.read()
    except (OSError, ValueError) as error:
        return str(error)
    return None


def check_tracking_reachable(uri: str | None = None, timeout: float = 5.0) -> None:
    """Raise :class:`FsmcError` naming ``uri`` when it is a tracking server that does not answer.

    Local stores (sqlite, file) need no check; they are created on first use.
    """
    from fsmc.errors import FsmcError

    uri = uri or tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return
    error = health_error(uri, timeout)
    if error is not None:
        raise FsmcError(
            f"The MLflow tracking server at MLFLOW_TRACKING_URI={uri} does not answer ({error}). Start it "
            "(`fsmc ui --port PORT` serves the project's store), fix the URI, or unset MLFLOW_TRACKING_URI to log "
            "to the local store mlruns/mlflow.db."
        )


def check_registry_store(model_uri: str) -> None:
    """Raise :class:`FsmcError` when ``model_uri`` (models:/...) would be looked up in a local store that does not exist.

    Why: MLflow creates a missing SQLite store on first use, so looking a model up in it would leave an empty
    ``mlruns/`` behind a command that then fails for bad input.
    """
    from fsmc.errors import FsmcError

    uri = tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise FsmcError(
            f"{model_uri} names a registered model, but the tracking store {uri} does not exist, so nothing is registered "
            "there. Run from the project folder whose mlruns/ holds the model, point MLFLOW_TRACKING_URI at the store "
            "that holds it, or register one first (`fsmc run` or `fsmc register-teacher`)."
        )


def check_prefect_reachable(url: str, timeout: float = 5.0) -> None:
    """Raise :class:`FsmcError` naming ``url`` (PREFECT_API_URL) when no Prefect server answers there.

    Why: Prefect's client retries a refused connection for minutes and then fails with a traceback.
    """
    from fsmc.errors import FsmcError

    error = health_error(url, timeout)
    if error is not None:
        raise FsmcError(
            f"No Prefect server answers at PREFECT_API_URL={url} ({error}). Start one with `fsmc server start --port PORT` "
            "and export PREFECT_API_URL=http://127.0.0.1:PORT/api, or fix the URL."
        )
