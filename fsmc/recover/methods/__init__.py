"""Recovery methods by name. Adding one is a new module here, registered in ``METHODS``.

Each module's docstring gives the formula it implements, the paper, and where it
departs from the paper. The OE-FSMC plug-in (``recover.oe``) works on every
method: gradient methods get OOD images in their distillation term (unlabelled)
and, where they have one, in their label term with labels drawn from Gamma and
class weights w (``fsmc.recover.loop``); fskd and cd's layer-wise phase take OOD
images as further unlabelled inputs.
"""

from __future__ import annotations

from fsmc.recover.methods import bp, cd, fskd, kd, mir, none
from fsmc.recover.methods.base import RecoveryContext, RecoveryMethod

METHODS: dict[str, RecoveryMethod] = {m.METHOD.name: m.METHOD for m in (none, bp, kd, fskd, cd, mir)}

__all__ = ["METHODS", "RecoveryContext", "RecoveryMethod"]
