"""Prefect's log records, filtered for a terminal user: bad input is the CLI's to print, once."""

from __future__ import annotations

import logging

from fsmc.errors import FsmcError
from tasks.settings import tracking_errors

# Tasks that talk to the tracking server: their failures are the server's, not bugs, so a retry
# is logged as one line and the CLI's closing paragraph says what to do.
_TRACKING_TASKS = ("log_to_mlflow", "promotion_gate")


class _HideUserErrors(logging.Filter):
    """Drop Prefect's failure records for :class:`FsmcError`: the CLI prints those as one paragraph.

    Failures of the tracking tasks lose their traceback (one line each). Any other
    exception (a bug) keeps its full traceback in Prefect's log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        message = record.getMessage()
        from_tracking_task = any(name in message or name in getattr(record, "task_run_name", "") for name in _TRACKING_TASKS)
        if from_tracking_task and (error is None or isinstance(error, tracking_errors())):
            first_line = message.splitlines()[0] if message else ""
            record.msg, record.args, record.exc_info, record.exc_text = first_line, None, None, None
            return True
        if isinstance(error, FsmcError):
            return False
        # "Finished in state Failed('... encountered an exception FsmcError: ...')" carries no exc_info.
        return not any(f"exception {name}:" in message for name in _user_error_names())


def _user_error_names() -> set[str]:
    pending, names = [FsmcError], set()
    while pending:
        cls = pending.pop()
        names.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return names


def hide_user_errors_in_prefect_logs() -> None:
    """Filter Prefect's loggers so a user's bad input is printed once, by the CLI, not as a task traceback."""
    user_errors = _HideUserErrors()
    for name in ["prefect", *[n for n in logging.root.manager.loggerDict if n.startswith("prefect")]]:
        logger = logging.getLogger(name)
        logger.addFilter(user_errors)
        for handler in logger.handlers:
            handler.addFilter(user_errors)
