"""What a recovery method or a compression scheme declares about itself: name, description, params, what it applies to.

Each method and scheme has one declaration module (``fsmc/config/methods/<name>.py``,
``fsmc/config/schemes/<name>.py``); validation (:mod:`fsmc.config.applicability`), ``fsmc methods``
and the params documentation derive from them, and the implementation (``fsmc.recover.methods.<name>``,
``fsmc.compress.schemes``) names the declaration it implements. Declarations hold no torch: a refused
setting or ``fsmc methods`` answers before any heavy library loads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fsmc.config.schema import Params

# A rule that looks at the whole configuration: the reason it cannot run as set, or None.
Rule = Callable[["Params"], "str | None"]


@dataclass(frozen=True)
class MethodDeclaration:
    """A recovery method: ``recover.method=<name>``."""

    name: str
    summary: str  # one line for `fsmc methods`
    paper: str
    teacher_signal: str  # what of the teacher it learns from
    params: tuple[str, ...] = ()  # the recover.* keys it reads beyond the shared loop's (steps, lr, batch_size, ...)
    learning_rate: float = 0.02  # what recover.lr: 0 stands for (a feature-map MSE has far smaller gradients than KL/CE)
    needs_features: bool = False  # whether it reads the teacher's pre-pooling feature maps
    cannot_follow: Mapping[str, str] = field(default_factory=dict)  # scheme -> why this method cannot recover it
    rules: tuple[Rule, ...] = ()  # configuration-wide conditions (e.g. a distillation student's width)


@dataclass(frozen=True)
class SchemeDeclaration:
    """A compression scheme: ``compress.scheme=<name>``."""

    name: str
    summary: str  # one line for `fsmc methods`
    params: tuple[str, ...] = ()  # the compress.* keys it reads
    only_methods: tuple[str, ...] = ()  # if set, the only methods that can follow it ...
    only_reason: str = ""  # ... and why the others cannot
    rules_out: Mapping[str, str] = field(default_factory=dict)  # method -> why it cannot follow this scheme
    rules: tuple[Rule, ...] = ()  # configuration-wide conditions (e.g. recover.precision with int8-qat)
