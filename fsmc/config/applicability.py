"""Which recovery method can follow which compression scheme, derived from their declarations (no torch).

A pair is ruled out by the scheme (``only_methods`` / ``rules_out``) or by the method
(``cannot_follow``); each carries its reason. Configuration-wide conditions (``rules``) of the
chosen scheme and method run on the whole params.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fsmc.config.methods import METHOD_DECLARATIONS
from fsmc.config.schemes import SCHEME_DECLARATIONS

if TYPE_CHECKING:
    from fsmc.config.schema import Params

RECOVERY_METHODS = tuple(METHOD_DECLARATIONS)
SCHEMES = tuple(SCHEME_DECLARATIONS)


def inapplicable_reason(scheme: str, method: str) -> str | None:
    """Why ``method`` cannot recover a model compressed by ``scheme``; None when it can."""
    declared = SCHEME_DECLARATIONS[scheme]
    if declared.only_methods and method not in declared.only_methods:
        return declared.only_reason
    return declared.rules_out.get(method) or METHOD_DECLARATIONS[method].cannot_follow.get(scheme)


def applicable_methods(scheme: str) -> tuple[str, ...]:
    """The methods that can recover a model compressed by ``scheme``, in listing order."""
    return tuple(m for m in RECOVERY_METHODS if inapplicable_reason(scheme, m) is None)


def configuration_problems(params: Params) -> list[str]:
    """What the chosen scheme's and method's rules say against ``params`` (empty: nothing)."""
    rules = (*SCHEME_DECLARATIONS[params.compress.scheme].rules, *METHOD_DECLARATIONS[params.recover.method].rules)
    return [problem for rule in rules if (problem := rule(params)) is not None]
