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
from torch import nn

from fsmc.config import IMAGENET_NORMALIZATION, DataParams
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset


def train_torchvision_on_digits(name: str, size: int, epochs: int, path: Path) -> float:
    """Train ``name`` on digits at ``size`` x ``size`` RGB, save its ``state_dict()`` to ``path``; return test top-1."""
    torch.manual_seed(0)
    return train_on_digits(torchvision.models.get_model(name, weights=None, num_classes=10), size, epochs, path)


class UserNet(nn.Module):
    """A network of a user's own, not of any library: a stem, two residual stages (one with a 1x1 projection),
    ``x.mean((2, 3))`` as the global pooling, and a two-layer head."""

    def __init__(self, num_classes: int = 10, width: int = 16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.block1 = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
        )  # fmt: skip
        self.block2 = nn.Sequential(
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width),
        )  # fmt: skip
        self.project = nn.Sequential(nn.Conv2d(width, 2 * width, 1, stride=2, bias=False), nn.BatchNorm2d(2 * width))
        self.hidden = nn.Linear(2 * width, 2 * width)
        self.logits = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.relu(x + self.block1(x))
        x = torch.relu(self.project(x) + self.block2(x))
        return self.logits(torch.relu(self.hidden(x.mean((2, 3)))))


def build_user_net(num_classes: int = 10) -> nn.Module:
    """The factory a user names as ``teacher=module:tests.user_models:build_user_net``."""
    return UserNet(num_classes)


class DataDependentNet(UserNet):
    """A forward with Python control flow on tensor values: runs, but torch.fx cannot trace it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.mean() > 10:  # never true for normalised images
            x = x / 2
        return super().forward(x)


def build_data_dependent_net() -> nn.Module:
    """A factory without ``num_classes`` (fsmc then calls it with no arguments)."""
    return DataDependentNet(10)


def train_on_digits(model: nn.Module, size: int, epochs: int, path: Path) -> float:
    """Train ``model`` on digits at ``size`` x ``size`` RGB, save its ``state_dict()`` to ``path``; return test top-1."""
    torch.manual_seed(0)
    data = load_dataset(DataParams(image_size=size, image_channels=3))
    images, labels = to_tensor(data.train.images, data.train.pixel_max), torch.from_numpy(data.train.labels)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET_NORMALIZATION)
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
