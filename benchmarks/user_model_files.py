"""Make the files of issue 12's three commands: a user's image folders and their own trained teachers.

Writes, under ``--out``:

* ``photos/{train,test}/<class>/*.png``: CIFAR-10 images (from ``FSMC_DATA_DIR``) resized to ``--size``
  (a user's labelled folder; fsmc draws its few imbalanced shots from ``train``);
* ``unlabelled/pool/*.png``: Tiny-ImageNet images of classes that do not overlap CIFAR-10, same size (the OOD pool);
* ``mnv3.pt``: a torchvision ``mobilenet_v3_small`` (10 classes) trained at ``--train-size`` on CIFAR-10's train
  split, saved as ``state_dict()`` (ImageNet normalisation, as ``data.normalization=imagenet`` expects);
* ``mynets.py`` + ``mynet.pt``: a network of the user's own (tests/user_models.py ``UserNet``) trained at ``--user-size``.

Then, from ``--out`` (so ``module:mynets:build_net`` imports; issue 12's three commands, measured in benchmarks/README.md)::

    P="--set data.dataset=folder:photos --set data.ood_pool=folder:unlabelled"
    fsmc register-teacher --name cars-classifier --set teacher=torchvision:mobilenet_v3_small \
        --set teacher_weights=mnv3.pt --set image_size=64 $P
    fsmc run --set teacher=models:/cars-classifier/1 $P        # image size and class names from the registry
    fsmc run --set teacher=torchvision:mobilenet_v3_small --set teacher_weights=mnv3.pt --set image_size=64 $P
    fsmc run --set teacher=module:mynets:build_net --set teacher_weights=mynet.pt --set image_size=32 $P

    python benchmarks/user_model_files.py --out ~/fsmc-user [--size 224 --train-size 64 --user-size 32 --epochs 3]
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("FSMC_DATA_DIR", str(REPO.parent / "shared" / "datasets"))

from fsmc.config import IMAGENET_NORMALIZATION, DataParams  # noqa: E402
from fsmc.data.sources import load_dataset, load_ood_pool  # noqa: E402
from tests.user_models import UserNet  # noqa: E402


def write_pngs(folder: Path, images: np.ndarray, names: list[str], size: int) -> None:
    """Each uint8 H x W x 3 image as ``folder/<name>.png``, resized to ``size`` (bicubic, as a camera pipeline would)."""
    folder.mkdir(parents=True, exist_ok=True)
    for image, name in zip(images, names, strict=True):
        Image.fromarray(image).resize((size, size), Image.BICUBIC).save(folder / f"{name}.png")


def train(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, size: int, epochs: int, seed: int) -> None:
    """SGD one-cycle on ``images`` resized to ``size``, random flips, ImageNet normalisation."""
    torch.manual_seed(seed)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET_NORMALIZATION)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    y = torch.from_numpy(labels)
    steps = epochs * (len(x) // 128)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 0.1, total_steps=steps)
    draw = torch.Generator().manual_seed(seed)
    model.train()
    started = time.perf_counter()
    for step in range(steps):
        batch = torch.randint(len(x), (128,), generator=draw)
        xb = x[batch]
        xb = torch.where(torch.rand(len(xb), generator=draw)[:, None, None, None] < 0.5, xb.flip(3), xb)
        xb = F.interpolate(xb, size=(size, size), mode="bilinear", align_corners=False)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = F.cross_entropy(model((xb - mean) / std).float(), y[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 100 == 0:
            print(f"  step {step}/{steps} loss {loss.item():.3f} {time.perf_counter() - started:.0f}s", flush=True)
    model.eval()


def accuracy(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, size: int) -> float:
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET_NORMALIZATION)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        pred = torch.cat([model((x[k : k + 500] - mean) / std).argmax(1) for k in range(0, len(x), 500)])
    return float((pred.numpy() == labels).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", type=int, default=224, help="side of the PNGs written")
    parser.add_argument("--train-size", type=int, default=64, help="side the MobileNetV3 is trained at")
    parser.add_argument("--user-size", type=int, default=32, help="side the user's own network is trained at")
    parser.add_argument("--per-class", type=int, default=100, help="train and test PNGs per class")
    parser.add_argument("--pool", type=int, default=2000, help="OOD PNGs")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    cifar = load_dataset(DataParams(dataset="cifar10"))
    rng = np.random.default_rng(0)
    for split, part in (("train", cifar.train), ("test", cifar.test)):
        for cls, name in enumerate(cifar.classes):
            chosen = rng.choice(np.flatnonzero(part.labels == cls), args.per_class, replace=False)
            write_pngs(out / "photos" / split / name, part.images[chosen], [f"{i:05d}" for i in chosen], args.size)
    pool = load_ood_pool(DataParams(dataset="cifar10"))
    usable = np.flatnonzero(~np.isin(pool.images.labels, list(pool.excluded_labels)))
    chosen = rng.choice(usable, args.pool, replace=False)
    write_pngs(out / "unlabelled" / "pool", pool.images.images[chosen], [f"{i:05d}" for i in chosen], args.size)
    print(f"PNGs at {args.size}x{args.size} under {out}/photos and {out}/unlabelled", flush=True)

    # The user's module imports torch only: the class source is copied, not imported from fsmc's tests.
    (out / "mynets.py").write_text(
        '"""A network of the user\'s own (the source of fsmc\'s tests/user_models.py UserNet)."""\n'
        "import torch\nfrom torch import nn\n\n\n" + inspect.getsource(UserNet) + "\n\n"
        "def build_net(num_classes: int = 10) -> nn.Module:\n    return UserNet(num_classes)\n"
    )
    teachers = (("mnv3", torchvision.models.mobilenet_v3_small(num_classes=10), args.train_size), ("mynet", UserNet(10), args.user_size))
    for name, model, size in teachers:
        print(f"training {name} at {size}x{size}, {args.epochs} epochs of CIFAR-10 train", flush=True)
        train(model, cifar.train.images, cifar.train.labels, size, args.epochs, seed=0)
        torch.save(model.state_dict(), out / f"{name}.pt")
        print(f"{name}: CIFAR-10 test top-1 {100 * accuracy(model, cifar.test.images, cifar.test.labels, size):.2f} %", flush=True)


if __name__ == "__main__":
    main()
