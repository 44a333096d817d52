"""The trusted-module store: a checkpoint names a pickled module by hash, and only that exact file is unpickled."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fsmc.errors import FsmcError
from fsmc.models.checkpoint import load_checkpoint, save_checkpoint
from fsmc.models.trusted_pickle import trust_module_file, trusted_module_file
from fsmc.models.zoo import build


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))


def _spec(sha256: str) -> dict:
    return {"arch": "pickled", "kwargs": {"sha256": sha256, "num_classes": 4}, "mean": [0.0] * 3, "std": [1.0] * 3}


def test_a_stored_module_round_trips_through_an_fsmc_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("FSMC_CACHE_DIR", str(tmp_path / "cache"))
    net = _net()
    torch.save(net, tmp_path / "net.pt")
    sha256 = trust_module_file(tmp_path / "net.pt")
    model = build(_spec(sha256))
    save_checkpoint(tmp_path / "model.pt", model, _spec(sha256))
    loaded, spec, _ = load_checkpoint(tmp_path / "model.pt")
    images = torch.randn(2, 3, 8, 8)
    assert spec["arch"] == "pickled" and torch.equal(loaded(images), net.eval()(images))


def test_a_missing_or_edited_module_is_refused_with_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FSMC_CACHE_DIR", str(tmp_path / "cache"))
    torch.save(_net(), tmp_path / "net.pt")
    sha256 = trust_module_file(tmp_path / "net.pt")
    with trusted_module_file(sha256).open("ab") as stored:
        stored.write(b"tampered")
    with pytest.raises(FsmcError, match="no longer hashes to its name"):
        build(_spec(sha256))
    trusted_module_file(sha256).unlink()
    with pytest.raises(FsmcError, match=r"not in this machine's trusted store.*pull-teacher URI --set teacher.trust_pickle=true"):
        build(_spec(sha256))
    with pytest.raises(FsmcError, match="is not the sha256 of a trusted module"):
        build(_spec("../../elsewhere"))
