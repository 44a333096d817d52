"""``bp``: plain back-propagation fine-tuning of the compressed student on the few-shot labels.

Formula: ``L = CE(s(x), y)`` over the few-shot set (the "BP" baseline of MiR and
PRACTISE). Departure from those papers: the optimiser and schedule are the shared
recovery loop's (SGD, momentum 0.9, cosine decay over ``recover.steps``), not
their per-paper settings. With ``recover.oe`` the OE-FSMC label term on OOD images
(labels ~ Gamma, weights w) is added; there is no distillation term to join.
"""

from fsmc.recover.methods.base import LogitMethod

METHOD = LogitMethod(
    name="bp",
    summary="cross-entropy fine-tuning on the few-shot labels",
    paper="baseline (e.g. Wang et al., MiR, CVPR 2022)",
    distill_weight=lambda p: 0.0,
    label_weight=lambda p: 1.0,
)
