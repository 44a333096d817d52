"""torch.fx tracing of a user's network, with a refusal that names the call the tracer stopped at.

int8 graph-mode quantization and the feature/head split of a user's own network
(:mod:`fsmc.models.factory_net`) both trace the forward symbolically; a forward
with Python control flow on tensor values cannot be traced. The error then names
the first untraceable line of the user's code, not torch's internals.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from fsmc.errors import FsmcError

Result = TypeVar("Result")
_TORCH_ROOT = str(Path(torch.__file__).parent)


def untraceable_call(error: BaseException) -> str:
    """``FILE:LINE: code`` of the innermost frame outside torch (the user's forward) that ``error`` came through."""
    frames = traceback.extract_tb(error.__traceback__)
    outside_torch = [frame for frame in frames if not frame.filename.startswith(_TORCH_ROOT)]
    frame = (outside_torch or frames)[-1] if frames else None
    return f"{frame.filename}:{frame.lineno}: {(frame.line or '').strip()}" if frame else "an unknown call"


def traced(function: Callable[[], Result], what: str, instead: str) -> Result:
    """``function()``, which traces a model; a tracing failure becomes an FsmcError naming the untraceable call.

    Args:
        function: the call that traces (``symbolic_trace``, ``prepare_fx``, ...).
        what: what needed the trace, e.g. ``"scheme=int8-ptq"``.
        instead: what the user can do instead (a sentence).
    """
    try:
        return function()
    except FsmcError:
        raise
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise FsmcError(
            f"{what} needs torch.fx to trace the model's forward, and tracing stopped at {untraceable_call(error)} "
            f"({type(error).__name__}: {reason}). {instead} Or make the forward traceable: no Python control flow "
            "(if, for, while) on tensor values."
        ) from None
