"""Obtain the teacher: train it from scratch (embedded default) or fine-tune a pretrained one.

Adaptation follows the recipe that made ../shared/models/cifar10-jpeg: SGD with
Nesterov momentum 0.9, cosine decay to 0, weight decay 1e-4, batch 128, random
crop of the 4-pixel zero-padded image + horizontal flip, BatchNorm in train mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm import tqdm

from fsmc.config import TeacherParams
from fsmc.data.images import LabelledDataset, to_tensor
from fsmc.models.normalized import NormalizedClassifier
from fsmc.models.zoo import build, trained_here_spec
from fsmc.runtime import pick_device, seed_everything


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of N x C x H x W images (the model's normalisation)."""
    mean = images.mean(dim=(0, 2, 3))
    std = images.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return [round(v, 6) for v in mean.tolist()], [round(v, 6) for v in std.tolist()]


def crop_and_flip(images: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Random crop of the zero-padded batch plus random horizontal flip (one draw per image)."""
    n, _, h, w = images.shape
    padded = F.pad(images, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator).tolist()
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator).tolist()
    flip = (torch.rand(n, generator=generator) < 0.5).tolist()
    out = torch.empty_like(images)
    for i in range(n):
        crop = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = crop.flip(2) if flip[i] else crop
    return out


def fit(
    model: NormalizedClassifier,
    dataset: LabelledDataset,
    epochs: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
    seed: int,
    augment: bool,
    desc: str,
) -> NormalizedClassifier:
    """SGD (Nesterov) with cosine decay over the whole training split; returns the model on CPU, eval mode."""
    generator = seed_everything(seed)
    device = pick_device()
    images = to_tensor(dataset.train.images, dataset.train.pixel_max)
    labels = torch.from_numpy(dataset.train.labels)
    model = model.to(device)
    steps_per_epoch = -(-len(labels) // batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    model.train()
    for _ in tqdm(range(epochs), desc=desc, unit="epoch", leave=False, disable=None):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(labels), batch_size):
            batch = order[start : start + batch_size]
            x = images[batch]
            if augment:
                x = crop_and_flip(x, generator)
            loss = F.cross_entropy(model(x.to(device)), labels[batch].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    return model.cpu().eval()


def train_teacher(dataset: LabelledDataset, teacher: str, params: TeacherParams) -> tuple[NormalizedClassifier, dict]:
    """Train the named teacher from scratch on the whole training split (no augmentation).

    Returns:
        The model (eval mode, on CPU) and the builder spec that rebuilds it.
    """
    images = to_tensor(dataset.train.images, dataset.train.pixel_max)
    mean, std = channel_stats(images)
    spec = trained_here_spec(teacher, images.shape[1], dataset.num_classes, mean, std)
    seed_everything(params.seed)  # the initial weights come from the seed too
    model = build(spec)
    return fit(model, dataset, params.epochs, params.lr, 5e-4, params.batch_size, params.seed, False, "teacher"), spec


def adapt_teacher(model: NormalizedClassifier, dataset: LabelledDataset, params: TeacherParams) -> NormalizedClassifier:
    """Fine-tune a pretrained teacher on the full training split (distribution shift, e.g. JPEG)."""
    return fit(model, dataset, params.adapt_epochs, params.adapt_lr, 1e-4, 128, params.seed, True, "adapt teacher")
