"""A teacher another tool registered as a pickled module, for a user who trusts that registry (``teacher.trust_pickle``).

Unpickling runs code from the file, so fsmc refuses pickles unless the user opts in, as
``torch.load(weights_only=False)`` and Hugging Face's ``trust_remote_code=True`` make users do.
An opted-in module is kept in a content-addressed store (``<cache>/trusted-modules/<sha256>.pt``).
A checkpoint names it by hash only (``{"arch": "pickled", "kwargs": {"sha256": ...}}``), and it is
unpickled only from that store and only while its bytes still hash to that name, so a checkpoint
can never point fsmc at any other file. Everything after loading (input contract, pruning,
recovery, lineage) is the path every other teacher takes: the module is adopted like a user's
factory network (:class:`~fsmc.models.factory_net.FactoryClassifier`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from torch import nn

from fsmc.atomic import atomic_write, sha256_file
from fsmc.cache import cache_dir
from fsmc.errors import FsmcError
from fsmc.models.base import ClassifierNet
from fsmc.models.factory_net import FactoryClassifier

TRUST_KEY = "teacher.trust_pickle"


def trusted_module_file(sha256: str) -> Path:
    """Where the trusted module whose file hashes to ``sha256`` is kept."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise FsmcError(f"{sha256!r} is not the sha256 of a trusted module (64 lowercase hex digits).")
    return cache_dir() / "trusted-modules" / f"{sha256}.pt"


def trust_module_file(path: Path) -> str:
    """Put a copy of the pickled module in ``path`` in the store (if it is not there yet); return its sha256."""
    sha256 = sha256_file(path)
    target = trusted_module_file(sha256)
    if not target.is_file():
        atomic_write(target, lambda tmp: shutil.copyfile(path, tmp))
    return sha256


def load_trusted_module(sha256: str) -> nn.Module:
    """Unpickle the stored module ``sha256`` (its bytes checked first); an FsmcError that says how to fetch it when missing."""
    path = trusted_module_file(sha256)
    if not path.is_file():
        raise FsmcError(
            f"The teacher's pickled module (sha256 {sha256[:12]}…) is not in this machine's trusted store "
            f"({path.parent}). Fetch it again with `fsmc pull-teacher URI --set {TRUST_KEY}=true` (URI: the run's "
            "data.teacher), or run `fsmc run` with that setting, which fetches it first."
        )
    if sha256_file(path) != sha256:
        raise FsmcError(
            f"The trusted module {path} no longer hashes to its name (edited or corrupted on disk); delete it and "
            f"fetch the teacher again with `fsmc pull-teacher URI --set {TRUST_KEY}=true`."
        )
    # The user opted in for exactly this file (teacher.trust_pickle): unpickling it is what they asked for.
    try:
        module = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # the unpickled code itself can raise anything
        raise FsmcError(
            f"The trusted pickle {path} could not be unpickled ({type(error).__name__}: {error}); the classes it "
            "names must be importable where fsmc runs (install the package that defines them, or run from its folder)."
        ) from None
    if not isinstance(module, nn.Module):
        raise FsmcError(f"The trusted pickle {path} holds a {type(module).__name__}, not a torch.nn.Module.")
    return module


class PickledClassifier(FactoryClassifier):
    """The trusted pickled module ``sha256``, adopted as a classifier of ``num_classes`` classes.

    Args:
        sha256: the stored module's sha256 (see :func:`trust_module_file`).
        num_classes: the dataset's class count (the module must end in a linear layer with that many outputs).
    """

    def __init__(self, sha256: str, num_classes: int):
        ClassifierNet.__init__(self)
        model = load_trusted_module(sha256)
        self.target, self.source_sha256 = f"pickle:{sha256}", sha256
        self.adopt(model, num_classes, f"a trusted pickle ({sha256[:12]}…)", "Register the model trained for this dataset's classes.")
