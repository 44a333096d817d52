"""Train a teacher from scratch on a full training split (the embedded default's teacher)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm import tqdm

from fsmc.config import TeacherParams
from fsmc.data.images import LabelledDataset, to_tensor
from fsmc.models.normalized import NormalizedClassifier
from fsmc.models.zoo import build, teacher_spec
from fsmc.runtime import pick_device, seed_everything


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of N x C x H x W images (the model's normalisation)."""
    mean = images.mean(dim=(0, 2, 3))
    std = images.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return [round(v, 6) for v in mean.tolist()], [round(v, 6) for v in std.tolist()]


def train_teacher(dataset: LabelledDataset, teacher: str, params: TeacherParams) -> tuple[NormalizedClassifier, dict]:
    """Train the named teacher on the whole training split with SGD + cosine decay.

    Returns:
        The model (eval mode, on CPU) and the builder spec that rebuilds it.
    """
    generator = seed_everything(params.seed)
    device = pick_device()
    images = to_tensor(dataset.train.images, dataset.train.pixel_max)
    labels = torch.from_numpy(dataset.train.labels)
    mean, std = channel_stats(images)
    spec = teacher_spec(teacher, images.shape[1], dataset.num_classes, mean, std)
    model = build(spec).to(device)
    steps_per_epoch = -(-len(labels) // params.batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=params.lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=params.epochs * steps_per_epoch)
    model.train()
    for _ in tqdm(range(params.epochs), desc="teacher", unit="epoch", leave=False, disable=None):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(labels), params.batch_size):
            batch = order[start : start + params.batch_size]
            loss = F.cross_entropy(model(images[batch].to(device)), labels[batch].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    return model.cpu().eval(), spec
