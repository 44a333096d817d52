"""Evaluation throughput: fsmc's ``predict_logits`` vs a bare ``torch.no_grad()`` loop, same tensors, one run.

Target (issue 3): fsmc >= 90 % of the bare loop on ResNet-56 over the 10,000 test images.
Both are timed alternately, three rounds each, and the best round of each is compared.
"""

from __future__ import annotations

import time

import torch

from fsmc.config import DataParams
from fsmc.data.images import to_tensor
from fsmc.data.sources import load_dataset
from fsmc.models.registry import load_pretrained
from fsmc.runtime import predict_logits


def bare_loop(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    outputs = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            outputs.append(model(images[start : start + batch_size]))
    return torch.cat(outputs)


def main(rounds: int = 3) -> None:
    dataset = load_dataset(DataParams(dataset="cifar10", teacher="resnet56"))
    images = to_tensor(dataset.test.images, 255)
    model = load_pretrained("resnet56").eval()
    bare_loop(model, images[:512])  # warm-up (allocator, oneDNN primitives)
    best = {"bare": float("inf"), "fsmc": float("inf")}
    for _ in range(rounds):
        for name, call in (("bare", lambda: bare_loop(model, images)), ("fsmc", lambda: predict_logits(model, images))):
            start = time.perf_counter()
            call()
            best[name] = min(best[name], time.perf_counter() - start)
    n = len(images)
    print(f"bare torch.no_grad loop: {n / best['bare']:8.1f} img/s ({best['bare']:.2f} s)")
    print(f"fsmc predict_logits:     {n / best['fsmc']:8.1f} img/s ({best['fsmc']:.2f} s)")
    print(f"ratio fsmc / bare = {best['bare'] / best['fsmc']:.3f} (target >= 0.90); threads={torch.get_num_threads()}")


if __name__ == "__main__":
    main()
