"""Batch-hard triplet on hand-checked 1-D features (distances are plain absolute differences)."""
import pytest
import torch

from ckda_avalanche.losses import batch_hard_triplet, cross_batch_hard_triplet, euclidean_distances


def test_euclidean_distances_match_hand_values():
    a = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    d = euclidean_distances(a, a)
    assert d[0, 1].item() == pytest.approx(5.0, abs=1e-5)
    assert d[0, 0].item() == pytest.approx(0.0, abs=1e-5)


def test_batch_hard_triplet_hand_example():
    # x = 0, 1 (id 0) and 3, 5 (id 1), margin 0.1:
    # anchor 0: d_ap=1, d_an=3 -> 0; anchor 1: 1 vs 2 -> 0; anchor 3: d_ap=2 (to 5), d_an=2 (to 1) -> 0.1;
    # anchor 5: 2 vs 4 -> 0. Mean over 4 anchors = 0.025.
    feats = torch.tensor([[0.0], [1.0], [3.0], [5.0]])
    labels = torch.tensor([0, 0, 1, 1])
    assert batch_hard_triplet(feats, labels, margin=0.1).item() == pytest.approx(0.025, abs=1e-5)


def test_batch_hard_triplet_skips_singletons_and_keeps_graph():
    feats = torch.tensor([[0.0], [1.0], [3.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 1])  # id 1 has no positive -> only anchors 0 and 1 count
    # anchor 0: d_ap=1, d_an=3 -> 0; anchor 1: d_ap=1, d_an=2 -> 0 with margin 0.1; with margin 1.5: 0 and 0.5
    loss = batch_hard_triplet(feats, labels, margin=1.5)
    assert loss.item() == pytest.approx(0.25, abs=1e-5)
    loss.backward()
    assert feats.grad is not None
    lone = batch_hard_triplet(feats[:1], labels[:1])
    assert lone.item() == 0.0 and lone.requires_grad


def test_cross_batch_hard_triplet_uses_candidates_only():
    anchors = torch.tensor([[0.0], [10.0]])
    candidates = torch.tensor([[4.0], [6.0]])
    # anchor 0 (id 0): d_ap 4, d_an 6 -> relu(4 - 6 + 3) = 1; anchor 10 (id 1): d_ap 4 (to 6), d_an 6 (to 4) -> 1;
    # with candidates swapped the positives are far: anchor 0: 6 vs 4 -> 5; anchor 10: 6 vs 4 -> 5
    loss = cross_batch_hard_triplet(anchors, torch.tensor([0, 1]), candidates, torch.tensor([0, 1]), margin=3.0)
    assert loss.item() == pytest.approx(1.0, abs=1e-5)
    swapped = cross_batch_hard_triplet(anchors, torch.tensor([0, 1]), candidates, torch.tensor([1, 0]), margin=3.0)
    assert swapped.item() == pytest.approx(5.0, abs=1e-5)


def test_triplet_rejects_non_matrix():
    with pytest.raises(ValueError, match="2-D"):
        batch_hard_triplet(torch.zeros(4), torch.zeros(4, dtype=torch.long))
