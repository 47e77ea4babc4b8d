"""LwF for ReID: affinity and logit distillation terms (losses/lwf.py) and the plugin's teacher handling."""
import pytest
import torch

from ckda_avalanche.losses.lwf import (affinity_distillation_loss, batch_affinity, logit_distillation_loss,
                                       rowwise_kl)


def test_batch_affinity_is_row_stochastic_and_scale_invariant():
    f = torch.randn(6, 8)
    a = batch_affinity(f, temperature=0.1)
    assert torch.allclose(a.sum(1), torch.ones(6))
    assert torch.allclose(a, batch_affinity(3.0 * f, temperature=0.1), atol=1e-6)
    # the diagonal (cos = 1) is the largest entry of every row
    assert torch.equal(a.argmax(1), torch.arange(6))


def test_affinity_distillation_zero_iff_same_geometry():
    torch.manual_seed(0)
    t = torch.randn(8, 16)
    rot = torch.linalg.qr(torch.randn(16, 16))[0]
    # a rotation of the feature space keeps every cosine: nothing to distil
    assert affinity_distillation_loss(t @ rot, t).abs() < 1e-5
    s = torch.randn(8, 16, requires_grad=True)
    loss = affinity_distillation_loss(s, t)
    assert loss > 1e-3
    loss.backward()
    assert s.grad is not None and s.grad.abs().sum() > 0


def test_affinity_distillation_matches_manual_kl():
    s, t = torch.randn(5, 4), torch.randn(5, 4)
    a_s = batch_affinity(s, temperature=0.5)
    a_t = batch_affinity(t, temperature=0.5)
    manual = (a_t * (a_t.log() - a_s.log())).sum() / 5
    assert torch.allclose(affinity_distillation_loss(s, t, temperature=0.5), manual, atol=1e-5)
    assert torch.allclose(rowwise_kl(a_t, a_s), manual, atol=1e-5)


def test_logit_distillation_is_lwf_kd():
    s, t = torch.randn(4, 7), torch.randn(4, 7)
    assert logit_distillation_loss(t.clone(), t) < 1e-6
    q = torch.softmax(t / 2, 1)
    manual = (q * (q.log() - torch.log_softmax(s / 2, 1))).sum() / 4
    assert torch.allclose(logit_distillation_loss(s, t, temperature=2.0), manual, atol=1e-5)
    with pytest.raises(ValueError, match="shapes differ"):
        logit_distillation_loss(s, t[:, :3])
