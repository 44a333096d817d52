"""What a registry teacher takes as input, from its MLflow signature and metadata.

fsmc registers every model (students, and teachers through ``fsmc register-teacher``)
with a tensor signature of float images in [0, 1], N x C x H x W, normalisation
inside the model, and the class names in label order as model metadata. When such
a model is the teacher of a run, those facts decide the run's image size and
channels where params leave them unset (0), and the data's class order is checked
against the teacher's before any work: a model trained for ``cat, dog`` silently
compressed on ``dog, cat`` data would report nonsense per-class numbers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from fsmc.config import DataParams
from fsmc.errors import FsmcError


@dataclass(frozen=True)
class InputContract:
    """The input a registry teacher was registered with; ``None`` where the registry does not say."""

    channels: int | None = None
    height: int | None = None
    width: int | None = None
    class_names: tuple[str, ...] | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> InputContract:
        """The contract in a fetched teacher's lineage record (keys ``input_shape`` = [C, H, W], ``class_names``)."""
        shape = record.get("input_shape")
        channels, height, width = shape if shape and len(shape) == 3 else (None, None, None)
        names = record.get("class_names")
        return cls(channels, height, width, tuple(names) if names else None)


def signature_input_shape(signature_inputs: list[dict[str, Any]]) -> list[int] | None:
    """[C, H, W] of a signature whose one input is an N x C x H x W tensor (``Schema.to_dict()``), else ``None``."""
    if len(signature_inputs) != 1 or signature_inputs[0].get("type") != "tensor":
        return None
    shape = list(signature_inputs[0].get("tensor-spec", {}).get("shape", []))
    if len(shape) != 4 or any(not isinstance(d, int) or d <= 0 for d in shape[1:]):
        return None
    return [int(d) for d in shape[1:]]


def apply_input_contract(data: DataParams, contract: InputContract) -> DataParams:
    """``data`` with image size and channels taken from the teacher's contract where params leave them at 0.

    Raises:
        FsmcError: a size or channel count set in params disagrees with the teacher's, or the
            teacher takes non-square images (fsmc resizes to squares).
    """
    size, channels = data.image_size, data.image_channels
    if contract.height is not None and contract.width is not None:
        if contract.height != contract.width:
            raise FsmcError(
                f"The teacher {data.teacher} was registered for {contract.height}x{contract.width} images; fsmc resizes "
                "images to squares (data.image_size), so it can only compress a teacher of square input."
            )
        if size and size != contract.height:
            raise FsmcError(
                f"data.image_size={size} but the teacher {data.teacher} was registered for {contract.height}x"
                f"{contract.width} images; leave data.image_size at 0 (fsmc then resizes to the teacher's size) or set "
                f"it to {contract.height}."
            )
        size = contract.height
    if contract.channels is not None:
        if channels and channels != contract.channels:
            raise FsmcError(
                f"data.image_channels={channels} but the teacher {data.teacher} was registered for {contract.channels}-"
                f"channel images; leave data.image_channels at 0 or set it to {contract.channels}."
            )
        channels = contract.channels
    return dataclasses.replace(data, image_size=size, image_channels=channels)


def check_against_contract(contract: InputContract, teacher: str, classes: tuple[str, ...], image_shape: tuple[int, int, int]) -> None:
    """Refuse data whose class order or image shape (H, W, C) is not what the teacher was registered with."""
    if contract.class_names is not None and tuple(contract.class_names) != tuple(classes):
        raise FsmcError(
            f"The teacher {teacher} was registered for the classes {list(contract.class_names)} in that order, but the "
            f"data has {list(classes)}. Per-class results would be mislabelled: pass the dataset the teacher was "
            "trained on, with its class folders named and ordered as at training."
        )
    height, width, channels = image_shape
    if contract.height is not None and (height, width) != (contract.height, contract.width):
        raise FsmcError(
            f"The teacher {teacher} was registered for {contract.height}x{contract.width} images but the data's are "
            f"{height}x{width}; set data.image_size={contract.height} (fsmc run does this itself)."
        )
    if contract.channels is not None and channels != contract.channels:
        raise FsmcError(
            f"The teacher {teacher} was registered for {contract.channels}-channel images but the data has {channels}; "
            f"set data.image_channels={contract.channels} (fsmc run does this itself)."
        )
