"""The unlabelled images a layer-wise solve (fskd, cd) fits on, and their weights: the shots, plus OOD images with the plug-in."""

from __future__ import annotations

import numpy as np
import torch

from fsmc.config import RecoverParams
from fsmc.recover.data import RecoveryData
from fsmc.recover.loop import oe_active


def layerwise_images(data: RecoveryData, params: RecoverParams) -> torch.Tensor:
    """The unlabelled images a layer-wise solve (fskd, cd) uses: the shots, plus OOD images with the plug-in.

    At most ``recover.layerwise_ood`` OOD images (a seeded draw), since every layer's inputs over
    all of them are held in memory and a least-squares fit of a few hundred channels saturates long before.
    """
    if not oe_active(data, params):
        return data.images
    ood = data.ood_images
    if len(ood) > params.layerwise_ood:
        chosen = np.sort(np.random.default_rng(params.seed).choice(len(ood), params.layerwise_ood, replace=False))
        ood = ood[torch.from_numpy(chosen)]
    return torch.cat([data.images, ood])


def layerwise_weights(n_id: int, n_ood: int, ood_weight: float) -> torch.Tensor:
    """Per-image weights of a layer-wise solve over ``layerwise_images``: the shots' mean weighs 1, the OOD images' ``ood_weight``.

    Why: the OOD images outnumber the shots, and an unweighted fit would match the
    teacher on them at the shots' expense (digits, 60 steps: fskd -4 pt top-1).
    """
    return torch.cat([torch.full((n_id,), 1.0 / n_id), torch.full((n_ood,), ood_weight / max(n_ood, 1))])
