"""A user's timm classifier (``timm:NAME`` + a state dict) as a zoo net.

timm is an optional dependency (``pip install fsmc[timm]``): it is imported only
when a timm teacher is built. The network is ``timm.create_model(NAME,
pretrained=False, num_classes=N)`` — never downloaded weights: the user's state
dict is loaded afterwards — and is split into features and head exactly as a
network of the user's own (:class:`~fsmc.models.factory_net.FactoryClassifier`):
by tracing its forward up to the last global average pooling.
"""

from __future__ import annotations

import difflib

from fsmc.errors import FsmcError
from fsmc.models.base import ClassifierNet
from fsmc.models.factory_net import FactoryClassifier


def _timm():
    try:
        import timm
    except ImportError:
        raise FsmcError(
            "data.teacher=timm:... needs the timm package, which is an optional dependency of fsmc: install it with "
            "pip install 'fsmc[timm]' (or pip install timm), or save your model's state dict for a torchvision:NAME "
            "or module:PKG.MODULE:FUNCTION teacher."
        ) from None
    return timm


class TimmClassifier(FactoryClassifier):
    """``timm.create_model(name, pretrained=False, num_classes=num_classes)``, split at its global pooling.

    Args:
        name: a timm architecture (``timm.list_models()``), e.g. ``resnet18``, ``mobilenetv3_small_100``.
        num_classes: logits of the final linear layer.
    """

    def __init__(self, name: str, num_classes: int):
        ClassifierNet.__init__(self)
        timm = _timm()
        if not timm.is_model(name):
            close = difflib.get_close_matches(name, timm.list_models(), n=5)
            raise FsmcError(
                f"data.teacher=timm:{name} is not a timm architecture (timm {timm.__version__})"
                + (f"; close names: {', '.join(close)}." if close else "; `python -c \"import timm; print(timm.list_models())\"` lists them.")
            )
        model = timm.create_model(name, pretrained=False, num_classes=num_classes)
        self.name, self.target, self.source_sha256 = name, f"timm:{name}", ""
        self.adopt(model, num_classes, f"timm:{name}", "Pass the timm architecture the state dict was trained with.")
