"""Teacher adaptation: the augmentation is a real crop + flip, and fine-tuning moves the weights."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from fsmc.config import TeacherParams
from fsmc.data.images import ImageSet, LabelledDataset
from fsmc.models.pretrained import PRETRAINED
from fsmc.models.zoo import build
from fsmc.train.teacher import adapt_teacher, crop_and_flip


def test_crop_and_flip_returns_a_crop_of_the_padded_image_maybe_mirrored():
    image = torch.arange(2 * 8 * 8, dtype=torch.float32).view(1, 2, 8, 8).repeat(64, 1, 1, 1)
    out = crop_and_flip(image, torch.Generator().manual_seed(0), padding=2)
    padded = F.pad(image[0], (2, 2, 2, 2))
    legal = [c for dy in range(5) for dx in range(5) for c in [padded[:, dy : dy + 8, dx : dx + 8]]]
    legal += [c.flip(2) for c in legal]
    assert out.shape == image.shape
    assert all(any(torch.equal(view, crop) for crop in legal) for view in out)
    assert sum(not torch.equal(view, image[0]) for view in out) > 48, "most views must differ from the original"


def test_adaptation_fine_tunes_a_pretrained_resnet():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(64, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=64).astype(np.int64)
    split = ImageSet(images, labels, 255)
    dataset = LabelledDataset("tiny", tuple(str(i) for i in range(10)), split, split)
    model = build(PRETRAINED["resnet20"].spec)
    before = model.net.conv1.weight.detach().clone()
    adapted = adapt_teacher(model, dataset, TeacherParams(adapt_epochs=1, adapt_lr=0.05))
    assert not torch.equal(adapted.net.conv1.weight, before)
    assert not adapted.training
