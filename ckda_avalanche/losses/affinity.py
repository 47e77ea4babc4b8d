"""Prototype-affinity distillation of CKDA's cross-modal knowledge alignment (CKA).

CKDA (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016; docs/method.md §4.4). For a feature u and a prototype set Q,
r(u, Q) = softmax_k(cos(u, q_k) / tau) with tau = 0.1 is a distribution over old identities. Within one modality
group of the batch, A_ab = softmax_b(s * cos(r_a, r_b)); the teacher's feature gives A~; the loss is KL(A~ || A),
batch mean. L_intra pairs each modality with its own prototypes, L_inter with the other modality's prototypes.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from ckda_avalanche.losses.numerics import float32_loss

__all__ = ["AffinityTerms", "prototype_distribution", "affinity_matrix", "affinity_kl", "cka_terms", "cka_loss"]


class AffinityTerms(NamedTuple):
    """CKA's two terms before weighting."""

    intra: torch.Tensor
    """Visible samples vs visible prototypes and infrared vs infrared, averaged."""
    inter: torch.Tensor
    """Visible samples vs infrared prototypes and infrared vs visible, averaged."""


@float32_loss
def prototype_distribution(features: torch.Tensor, prototypes: torch.Tensor, *, tau: float = 0.1) -> torch.Tensor:
    """r(u, Q) = softmax_k(cos(u, q_k) / tau), (B, K)."""
    cos = F.normalize(features, dim=1) @ F.normalize(prototypes, dim=1).t()
    return torch.softmax(cos / tau, dim=1)


def _cosines(distributions: torch.Tensor) -> torch.Tensor:
    """cos(r_a, r_b) of the rows of ``distributions``, (B, B)."""
    r = F.normalize(distributions, dim=1)
    return r @ r.t()


@float32_loss
def affinity_matrix(distributions: torch.Tensor, *, scale: float = 0.1) -> torch.Tensor:
    """Log of A_ab = softmax_b(scale * cos(r_a, r_b)), (B, B)."""
    return torch.log_softmax(scale * _cosines(distributions), dim=1)


@float32_loss
def affinity_kl(
    student: torch.Tensor,
    teacher: torch.Tensor,
    prototypes: torch.Tensor,
    *,
    scale: float = 0.1,
    tau: float = 0.1,
) -> torch.Tensor:
    """KL(A~ || A) with batch-mean reduction for one modality group against one prototype set.

    Computed from the difference of the two cosine matrices rather than from two log-softmax matrices: at the
    published s = 0.1 every log A_ab is about -log B while the KL is about 1e-7, so subtracting two rounded
    log-softmaxes leaves float32 noise as large as the loss itself. With c, c~ the student's and teacher's cosines
    and delta = s (c~ - c): log A~_ab - log A_ab = delta_ab - d_a, where d_a = log sum_b A_ab exp(delta_ab) is
    evaluated as log1p(sum_b A_ab expm1(delta_ab)) (accurate for small delta; a plain log-sum-exp otherwise).
    """
    cos = _cosines(prototype_distribution(student, prototypes, tau=tau))
    with torch.no_grad():
        cos_teacher = _cosines(prototype_distribution(teacher.detach(), prototypes, tau=tau))
        a_teacher = torch.softmax(scale * cos_teacher, dim=1)
    delta = scale * (cos_teacher - cos)
    log_a = torch.log_softmax(scale * cos, dim=1)
    shift = (log_a.exp() * torch.expm1(delta)).sum(1, keepdim=True)
    small = shift.abs() < 0.5
    d = torch.where(small, torch.log1p(shift.clamp(-0.5, 0.5)), torch.logsumexp(log_a + delta, dim=1, keepdim=True))
    return (a_teacher * (delta - d)).sum(1).mean()


@float32_loss
def cka_terms(
    student: torch.Tensor,
    teacher: torch.Tensor,
    modality: torch.Tensor,
    visible_prototypes: torch.Tensor,
    infrared_prototypes: torch.Tensor,
    *,
    scale: float = 0.1,
    tau: float = 0.1,
) -> AffinityTerms:
    """L_intra and L_inter; a modality group with fewer than two samples or an empty prototype set is skipped.

    Each term is the mean over the (group, prototype set) pairs that were computed; if none was, it is a zero that
    still belongs to the student's graph.
    """
    zero = student.sum() * 0.0
    intra: list[torch.Tensor] = []
    inter: list[torch.Tensor] = []
    pairs = ((0, visible_prototypes, infrared_prototypes), (1, infrared_prototypes, visible_prototypes))
    for code, own, other in pairs:
        group = modality == code
        if int(group.sum()) < 2:
            continue
        s, t = student[group], teacher[group]
        if own.numel() > 0:
            intra.append(affinity_kl(s, t, own, scale=scale, tau=tau))
        if other.numel() > 0:
            inter.append(affinity_kl(s, t, other, scale=scale, tau=tau))
    return AffinityTerms(
        torch.stack(intra).mean() if intra else zero,
        torch.stack(inter).mean() if inter else zero,
    )


@float32_loss
def cka_loss(terms: AffinityTerms, *, intra_weight: float, inter_weight: float) -> torch.Tensor:
    """intra_weight * L_intra + inter_weight * L_inter (published: beta (1-mu) and beta mu with beta=1, mu=0.5)."""
    return intra_weight * terms.intra + inter_weight * terms.inter
