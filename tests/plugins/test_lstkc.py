"""LSTKC mechanisms: rectified affinity target and the affinity-discrepancy fusion weight (losses/lstkc.py)."""
import torch

from ckda_avalanche.losses.lstkc import (affinity_discrepancy_fusion_weight, rectified_affinity_distillation_loss,
                                         rectified_affinity_target)


def _rows(*rows):
    a = torch.tensor(rows, dtype=torch.float32)
    return a / a.sum(1, keepdim=True)


def test_correct_old_affinity_is_kept_unchanged():
    labels = torch.tensor([0, 0, 1, 1])
    # old model ranks every positive above every negative: the target is exactly A_old
    a_old = _rows([5, 3, 1, 1], [3, 5, 1, 1], [1, 1, 5, 3], [1, 1, 3, 5])
    a_new = _rows([4, 1, 2, 3], [1, 4, 3, 2], [2, 3, 4, 1], [3, 2, 1, 4])
    assert torch.allclose(rectified_affinity_target(a_new, a_old, labels), a_old)


def test_wrong_old_entries_are_rectified():
    labels = torch.tensor([0, 0, 1, 1])
    # row 0 of the old model: positive (0,1)=1 below negative (0,2)=4 -> both entries wrong in the old model
    a_old = _rows([5, 1, 4, 1], [3, 5, 1, 1], [1, 1, 5, 3], [1, 1, 3, 5])
    # the new model gets row 0 right: its values replace the old ones there
    a_new = _rows([5, 3, 1, 1], [3, 5, 1, 1], [1, 1, 5, 3], [1, 1, 3, 5])
    target = rectified_affinity_target(a_new, a_old, labels)
    raw = torch.stack([a_old[0, 0], a_new[0, 1], a_new[0, 2], a_old[0, 3]])  # correct-in-old kept, rest from new
    assert torch.allclose(target[0], raw / raw.sum())
    assert target[0, 1] > target[0, 2]
    # both wrong: the missed positive is raised to the hardest-negative threshold, the false negative lowered
    a_new_bad = a_old.clone()
    target = rectified_affinity_target(a_new_bad, a_old, labels)
    raw = torch.tensor([a_old[0, 0], a_old[0, 2], a_old[0, 1], a_old[0, 3]])  # pos -> thr_pos, neg -> thr_neg
    expected = raw / raw.sum()
    assert torch.allclose(target[0], expected, atol=1e-6)
    assert torch.allclose(target.sum(1), torch.ones(4))


def test_rectified_loss_gradient_flows_to_student_only():
    torch.manual_seed(0)
    s = torch.randn(8, 16, requires_grad=True)
    t = torch.randn(8, 16, requires_grad=True)
    labels = torch.arange(4).repeat_interleave(2)
    loss = rectified_affinity_distillation_loss(s, t, labels)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert s.grad.abs().sum() > 0 and t.grad is None


def test_fusion_weight_is_one_for_identical_models_and_drops_with_discrepancy():
    torch.manual_seed(0)
    # tight clusters: with the sharp temperature (0.01) only near-duplicates share affinity mass
    centres = torch.randn(10, 8)
    f = centres.repeat_interleave(5, 0) + 0.002 * torch.randn(50, 8)
    assert affinity_discrepancy_fusion_weight(f, f.clone(), chunk_size=7) == 1.0
    # a model that groups the images differently gets a low weight
    g = f[torch.randperm(50)]
    w = affinity_discrepancy_fusion_weight(f, g)
    assert 0.0 <= w < 0.5
    noisy = f + 0.001 * torch.randn(50, 8)
    w_small = affinity_discrepancy_fusion_weight(f, noisy, chunk_size=3)
    assert abs(w_small - affinity_discrepancy_fusion_weight(f, noisy, chunk_size=50)) < 1e-5
    assert w < w_small < 1.0
