"""The recovery methods' declarations, in the order ``fsmc methods`` lists them (one module each)."""

from __future__ import annotations

from fsmc.config.declarations import MethodDeclaration
from fsmc.config.methods import bp, cd, fskd, kd, mir, none

METHOD_DECLARATIONS: dict[str, MethodDeclaration] = {m.METHOD.name: m.METHOD for m in (none, bp, kd, fskd, cd, mir)}
