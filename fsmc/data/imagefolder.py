"""A user's own images: class sub-folders of PNG / JPEG files (torchvision's ImageFolder layout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from fsmc.data.images import ImageSet
from fsmc.errors import FsmcError

EXTENSIONS = {".png", ".jpg", ".jpeg"}


def read_image_folder(root: Path, size: int = 32) -> tuple[tuple[str, ...], ImageSet]:
    """Load ``root/<class>/<image>`` as RGB uint8 ``size`` x ``size`` images, classes sorted by name.

    Images of another size are resized with a box filter (an exact mean for 2x).
    """
    root = Path(root)
    if not root.is_dir():
        raise FsmcError(f"Image folder {root} does not exist; expected {root}/<class name>/<image>.png|jpg.")
    classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
    if not classes:
        raise FsmcError(f"{root} has no class sub-folders; expected {root}/<class name>/<image>.png|jpg.")
    images, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted((root / name).iterdir()):
            if file.suffix.lower() not in EXTENSIONS:
                continue
            try:
                with Image.open(file) as image:
                    rgb = image.convert("RGB")
                    if rgb.size != (size, size):
                        rgb = rgb.resize((size, size), Image.Resampling.BOX)
                    images.append(np.asarray(rgb, dtype=np.uint8))
            except (OSError, UnidentifiedImageError) as error:
                raise FsmcError(f"{file} is not a readable PNG/JPEG image ({error}); remove or replace it.") from None
            labels.append(label)
    if not images:
        raise FsmcError(f"{root} holds no PNG or JPEG images under its class folders.")
    return classes, ImageSet(np.stack(images), np.asarray(labels, dtype=np.int64), 255)
