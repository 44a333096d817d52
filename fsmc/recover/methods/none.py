"""``none``: no recovery; the compressed student is evaluated as it comes out of compression.

The baseline every method must beat, and the only choice after ``int8-ptq`` (an
integer model has nothing to train).
"""

from __future__ import annotations

from torch import nn

from fsmc.config import RecoverParams
from fsmc.config.methods.none import METHOD as DECLARATION
from fsmc.recover.loop import start_report
from fsmc.recover.methods.base import RecoveryContext, RecoveryMethod
from fsmc.recover.report import RecoveryReport


def run(student: nn.Module, context: RecoveryContext, params: RecoverParams) -> tuple[nn.Module, RecoveryReport]:
    """The student unchanged."""
    report = start_report(context.data, params)
    report.oe_active = False
    if params.oe:
        report.notes.append("method none trains nothing: oe=true has no effect")
    return student.eval(), report


METHOD = RecoveryMethod(DECLARATION, run)
