"""Recovery methods by name. Adding one is a new module here, registered in ``METHODS``.

Every method in this registry trains the student on logits; it says how much of
the loss is distillation (teacher soft targets) and how much is the label term.
The OE-FSMC plug-in (``recover.oe``) works on any of them: OOD images join the
distillation term unlabelled and the label term with labels drawn from Gamma and
class weights w (see ``fsmc.recover.loop``).
"""

from __future__ import annotations

from fsmc.recover.methods import bp, kd
from fsmc.recover.methods.base import LogitMethod

METHODS: dict[str, LogitMethod] = {method.name: method for method in (bp.METHOD, kd.METHOD)}

__all__ = ["METHODS", "LogitMethod"]
