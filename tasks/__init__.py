"""Prefect tasks: thin wrappers around the pure stage workers in ``fsmc.stages``.

Importing this package sets quiet, offline-safe defaults for Prefect and MLflow
(each only when the user has not set it): see ``tasks.settings``.
"""

from tasks.settings import apply_defaults

apply_defaults()
