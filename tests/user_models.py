"""A user's own classifiers for the tests: torchvision nets briefly trained on the embedded digits.

What a user brings to fsmc is a state-dict file of a torchvision architecture; these
helpers make one (digits fitted to RGB at the given size, ImageNet normalisation, as
``data.normalization=imagenet`` expects) and write image folders of PNGs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

from fsmc.config import IMAGENET_NORMALIZATION, DataParams
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset


def train_torchvision_on_digits(name: str, size: int, epochs: int, path: Path) -> float:
    """Train ``name`` on digits at ``size`` x ``size`` RGB, save its ``state_dict()`` to ``path``; return test top-1."""
    torch.manual_seed(0)
    data = load_dataset(DataParams(image_size=size, image_channels=3))
    images, labels = to_tensor(data.train.images, data.train.pixel_max), torch.from_numpy(data.train.labels)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET_NORMALIZATION)
    model = torchvision.models.get_model(name, weights=None, num_classes=10)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    steps = epochs * (len(images) // 64)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 0.05, total_steps=steps)
    draw = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        batch = torch.randint(len(images), (64,), generator=draw)
        loss = torch.nn.functional.cross_entropy(model((images[batch] - mean) / std), labels[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    # torchvision's MobileNets use BN momentum 0.01: a short run leaves the running statistics unset. Recompute them.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    with torch.no_grad():
        for start in range(0, len(images), 256):
            model((images[start : start + 256] - mean) / std)
    model.eval()
    test = to_tensor(data.test.images, data.test.pixel_max)
    with torch.no_grad():
        accuracy = float((model((test - mean) / std).argmax(1).numpy() == data.test.labels).mean())
    torch.save(model.state_dict(), path)
    return accuracy


def write_png_folder(root: Path, images: np.ndarray, labels: np.ndarray, classes: list[str], pixel_max: int) -> None:
    """``root/<class>/<index>.png`` for uint8 N x H x W x C images on a ``pixel_max`` scale."""
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / classes[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        rgb = np.rint(image.astype(np.float32) * (255.0 / pixel_max)).astype(np.uint8)
        Image.fromarray(rgb.squeeze(-1) if rgb.shape[-1] == 1 else rgb).save(folder / f"{index:05d}.png")
