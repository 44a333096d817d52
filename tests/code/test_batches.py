"""How the recovery loop composes its batches from the few shots and the OOD pool."""

from __future__ import annotations

import torch

from fsmc.recover.batch_plan import mixed_batches


def test_a_fixed_share_of_shots_in_every_batch_and_every_image_in_turn():
    stream = mixed_batches(n_id=10, n_ood=100, batch_size=16, id_per_batch=4, generator=torch.Generator().manual_seed(0))
    batches = [next(stream) for _ in range(25)]  # 100 shots drawn, 300 OOD images drawn
    assert all((b < 10).sum() == 4 and len(b) == 16 for b in batches[:2])
    shots = torch.cat([b[b < 10] for b in batches])
    ood = torch.cat([b[b >= 10] for b in batches])
    # Each source is walked in shuffled passes: after whole passes every image was seen equally often.
    assert torch.bincount(shots, minlength=10).tolist() == [10] * 10
    assert torch.bincount(ood - 10, minlength=100).tolist() == [3] * 100


def test_uniform_draw_over_shots_and_ood_when_no_share_is_set():
    stream = mixed_batches(n_id=10, n_ood=90, batch_size=20, id_per_batch=0, generator=torch.Generator().manual_seed(1))
    seen = torch.cat([next(stream) for _ in range(5)])  # exactly one pass over the 100 images
    assert sorted(seen.tolist()) == list(range(100))


def test_without_ood_only_shots_are_drawn():
    stream = mixed_batches(n_id=7, n_ood=0, batch_size=4, id_per_batch=2, generator=torch.Generator().manual_seed(2))
    assert all(int(next(stream).max()) < 7 for _ in range(10))
