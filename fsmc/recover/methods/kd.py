"""``kd``: Hinton knowledge distillation on the few-shot set.

Formula (Hinton, Vinyals & Dean 2015): ``L = alpha * T^2 * KL(softmax(t/T) || softmax(s/T))
+ (1 - alpha) * CE(s(x), y)``, with ``T = recover.temperature`` and ``alpha =
recover.alpha``. The ``T^2`` factor is the paper's gradient-scale correction.
Departure: teacher logits are precomputed once on the un-augmented few-shot images
(no augmentation), as the few-shot setting has no data to augment from.
"""

from fsmc.recover.methods.base import LogitMethod

METHOD = LogitMethod(
    name="kd",
    summary="Hinton KD: teacher soft targets at temperature T plus the label term",
    paper="Hinton et al., Distilling the Knowledge in a Neural Network, 2015",
    distill_weight=lambda p: p.alpha,
    label_weight=lambda p: 1.0 - p.alpha,
)
