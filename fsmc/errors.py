"""User-facing errors: one paragraph naming the bad value and what would be valid."""

from __future__ import annotations

# Exit code for bad input, shared by the CLI and the DVC stage entry point.
BAD_INPUT_EXIT_CODE = 2


class FsmcError(Exception):
    """An error caused by the user's input or environment, not by a bug.

    The message is shown to the user as-is, so it must say what was wrong,
    which value caused it and what would be valid.
    """
