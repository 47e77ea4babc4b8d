"""Prototype-affinity KL (CKA) on hand-checked tensors."""
import math

import pytest
import torch

from ckda_avalanche.losses import (
    affinity_kl,
    affinity_matrix,
    cka_loss,
    cka_terms,
    prototype_distribution,
)

PROTOS = torch.tensor([[1.0, 0.0], [0.0, 1.0]])


def test_prototype_distribution_hand_values():
    r = prototype_distribution(torch.tensor([[2.0, 0.0]]), PROTOS, tau=0.1)
    p = 1.0 / (1.0 + math.exp(-10.0))  # softmax([10, 0])
    assert r[0].tolist() == pytest.approx([p, 1 - p], abs=1e-6)


def test_affinity_matrix_rows_are_distributions():
    log_a = affinity_matrix(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), scale=1.0)
    # row 0: cos to itself 1, to row 1 0, to row 2 1/sqrt(2)
    z = [1.0, 0.0, 1 / math.sqrt(2)]
    expected = [math.exp(v) / sum(math.exp(u) for u in z) for v in z]
    assert log_a[0].exp().tolist() == pytest.approx(expected, abs=1e-6)


def test_affinity_kl_hand_value():
    student = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    teacher = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # teacher: identical r -> A~ = 0.5 everywhere. student: r0 = [p, 1-p], r1 = [1-p, p]
    p = 1.0 / (1.0 + math.exp(-10.0))
    c = 2 * p * (1 - p) / (p * p + (1 - p) ** 2)
    a00 = 1.0 / (1.0 + math.exp(-0.1 * (1.0 - c)))  # softmax([0.1*1, 0.1*c]) first entry
    expected = 0.5 * math.log(0.25 / (a00 * (1 - a00)))  # (1/B) sum_a sum_b A~ log(A~/A), both rows equal
    loss = affinity_kl(student, teacher, PROTOS, scale=0.1)
    assert loss.item() == pytest.approx(expected, rel=1e-4)
    loss.backward()
    assert student.grad is not None
    # s = 10 sharpens A, so the same disagreement costs more
    assert affinity_kl(student, teacher, PROTOS, scale=10.0).item() > 10 * expected


def test_affinity_kl_zero_when_teacher_equals_student():
    x = torch.randn(5, 4)
    assert affinity_kl(x, x.clone(), torch.randn(3, 4)).item() == pytest.approx(0.0, abs=1e-6)


def test_cka_terms_pair_groups_with_the_right_prototypes():
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 4), torch.randn(6, 4)
    modality = torch.tensor([0, 0, 0, 1, 1, 1])
    vis, ir = torch.randn(3, 4), torch.randn(5, 4)
    terms = cka_terms(student, teacher, modality, vis, ir, scale=10.0)
    v, i = slice(0, 3), slice(3, 6)
    def kl(group, protos):
        return affinity_kl(student[group], teacher[group], protos, scale=10.0)

    intra = 0.5 * (kl(v, vis) + kl(i, ir))
    inter = 0.5 * (kl(v, ir) + kl(i, vis))
    assert terms.intra.item() == pytest.approx(intra.item(), rel=1e-6)
    assert terms.inter.item() == pytest.approx(inter.item(), rel=1e-6)
    assert cka_loss(terms, intra_weight=0.5, inter_weight=0.0).item() == pytest.approx(0.5 * intra.item(), rel=1e-6)
    assert cka_loss(terms, intra_weight=0.0, inter_weight=2.0).item() == pytest.approx(2 * inter.item(), rel=1e-6)


def test_cka_terms_skip_groups_smaller_than_two():
    student = torch.randn(3, 4, requires_grad=True)
    teacher = torch.randn(3, 4)
    modality = torch.tensor([0, 0, 1])  # one infrared sample only
    vis, ir = torch.randn(2, 4), torch.randn(2, 4)
    terms = cka_terms(student, teacher, modality, vis, ir)
    assert terms.intra.item() == pytest.approx(affinity_kl(student[:2], teacher[:2], vis).item(), rel=1e-6)
    empty = cka_terms(student[2:], teacher[2:], modality[2:], vis, ir)
    assert empty.intra.item() == 0.0 and empty.intra.requires_grad


def _kl_reference_float64(student, teacher, prototypes, scale, tau):
    """KL(A~ || A) straight from docs/method.md §4, in float64."""
    s, t, q = student.double(), teacher.double(), prototypes.double()

    def log_affinity(u):
        r = torch.softmax(torch.nn.functional.normalize(u, dim=1) @ torch.nn.functional.normalize(q, dim=1).t() / tau,
                          dim=1)
        r = torch.nn.functional.normalize(r, dim=1)
        return torch.log_softmax(scale * r @ r.t(), dim=1)

    log_a, log_t = log_affinity(s), log_affinity(t)
    return float((log_t.exp() * (log_t - log_a)).sum(1).mean())


@pytest.mark.parametrize("scale", [0.1, 10.0])
def test_affinity_kl_float32_matches_float64_at_the_published_scale(scale):
    """At s = 0.1 the KL is ~1e-7: subtracting two float32 log-softmaxes gave errors of ~10% of it."""
    from ckda_avalanche.losses.affinity import affinity_kl

    g = torch.Generator().manual_seed(3)
    ln = torch.nn.functional.layer_norm
    worst = 0.0
    for _ in range(10):
        student = ln(torch.randn(32, 768, generator=g), (768,))
        teacher = student + 0.3 * ln(torch.randn(32, 768, generator=g), (768,))
        protos = ln(torch.randn(50, 768, generator=g), (768,))
        expected = _kl_reference_float64(student, teacher, protos, scale, 0.1)
        got = affinity_kl(student, teacher, protos, scale=scale, tau=0.1)
        assert got.dtype == torch.float32
        worst = max(worst, abs(float(got) - expected) / abs(expected))
    assert worst < 1e-3


def test_affinity_kl_gradient_matches_finite_differences():
    from ckda_avalanche.losses.affinity import affinity_kl

    g = torch.Generator().manual_seed(4)
    student = torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(6, 5, generator=g, dtype=torch.float64)
    protos = torch.randn(4, 5, generator=g, dtype=torch.float64)
    for scale in (0.1, 10.0):
        assert torch.autograd.gradcheck(lambda s: affinity_kl(s, teacher, protos, scale=scale, tau=0.1), (student,))
