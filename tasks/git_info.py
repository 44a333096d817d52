"""Which code ran: the git commit of the fsmc checkout, for every run's and registered version's tags."""

from __future__ import annotations

import subprocess
from pathlib import Path

import fsmc


def git_commit() -> str:
    """The git commit of the fsmc code that ran (``+dirty`` with local changes), or ``unknown`` outside a checkout."""
    code = Path(fsmc.__file__).parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=code, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "."], cwd=code.parent, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}+dirty" if dirty else commit
