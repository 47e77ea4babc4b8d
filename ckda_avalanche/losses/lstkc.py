"""LSTKC: Long Short-Term Knowledge Consolidation (Xu, Zhou et al., AAAI 2024) - the two mechanisms.

1. **Short-term: rectified affinity distillation.** The old model's batch affinity ``A_old`` (softmax over cosine
   similarities / 0.1) is distilled into the new model's ``A_new`` with ``KL(T || A_new)``, where the target ``T`` is
   ``A_old`` *rectified* with the ground-truth identity relation of the batch. Per row i, with P the positives
   (same identity) and N the negatives:

   * a positive (i, j) is *correct* in a matrix when its score exceeds that row's hardest negative score
     ``thr_pos = max_{k in N} A_ik`` (the diagonal always counts as correct);
   * a negative (i, j) is *correct* when its score does not exceed that row's easiest positive score
     ``thr_neg = min_{k in P, k != i} A_ik`` (no other positive: every negative is correct).

   ``T_ij = A_old_ij`` where the old model is correct; ``A_new_ij`` (detached) where the old is wrong and the new
   correct; ``max(thr_pos_new, thr_pos_old)`` for a positive both miss; ``min(thr_neg_new, thr_neg_old)`` for a
   negative both get wrong; then rows are renormalised.
2. **Long-term: adaptive model fusion.** After a session, the new weights are fused with the old ones,
   ``theta = alpha * theta_new + (1 - alpha) * theta_old`` where ``alpha = 1 - mean_i sum_j |A_new - A_old|``, the
   affinities being computed over the whole training set of the session just learnt with a sharp temperature (0.01).
   ``alpha`` is clamped to [0, 1] here (the L1 distance of two distributions lies in [0, 2], so the unclamped value
   can go negative; the public code does not guard it).

The definitions follow the paper and a reading of its public code (github.com/zhoujiahuan1991/AAAI2024-LSTKC);
nothing is copied.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ckda_avalanche.losses.lwf import rowwise_kl, batch_affinity
from ckda_avalanche.losses.numerics import float32_loss


def _row_thresholds(affinity: torch.Tensor, same: torch.Tensor, eye: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row hardest-negative score (``thr_pos``) and easiest other-positive score (``thr_neg``)."""
    neg = ~same
    thr_pos = affinity.masked_fill(~neg, float("-inf")).amax(dim=1, keepdim=True)
    other_pos = same & ~eye
    thr_neg = affinity.masked_fill(~other_pos, float("inf")).amin(dim=1, keepdim=True)
    return thr_pos, thr_neg


def _correct_mask(affinity: torch.Tensor, same: torch.Tensor, eye: torch.Tensor,
                  thr_pos: torch.Tensor, thr_neg: torch.Tensor) -> torch.Tensor:
    """Entries a matrix gets right: positives above the hardest negative, negatives not above the easiest positive."""
    pos_ok = same & ((affinity > thr_pos) | eye)
    neg_ok = (~same) & ~(affinity > thr_neg)
    return pos_ok | neg_ok


@float32_loss
def rectified_affinity_target(a_new: torch.Tensor, a_old: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The LSTKC distillation target: the old affinity with the entries it gets wrong rectified (see module doc).

    ``a_new`` and ``a_old`` are row-stochastic ``(B, B)`` affinities of the same batch, ``labels`` its ``(B,)``
    identities. Returns a detached row-stochastic ``(B, B)`` matrix.
    """
    if a_new.shape != a_old.shape or a_new.dim() != 2 or a_new.shape[0] != a_new.shape[1]:
        raise ValueError(
            f"rectified_affinity_target: need two (B, B) affinities, got {tuple(a_new.shape)} and {tuple(a_old.shape)}"
        )
    if labels.shape != (a_new.shape[0],):
        raise ValueError(f"rectified_affinity_target: labels must be ({a_new.shape[0]},), got {tuple(labels.shape)}")
    a_new = a_new.detach()
    a_old = a_old.detach()
    same = labels.view(-1, 1) == labels.view(1, -1)
    eye = torch.eye(a_new.shape[0], dtype=torch.bool, device=a_new.device)
    thr_pos_new, thr_neg_new = _row_thresholds(a_new, same, eye)
    thr_pos_old, thr_neg_old = _row_thresholds(a_old, same, eye)
    old_ok = _correct_mask(a_old, same, eye, thr_pos_old, thr_neg_old)
    new_ok = _correct_mask(a_new, same, eye, thr_pos_new, thr_neg_new)
    both_wrong = ~old_ok & ~new_ok
    pos_fix = torch.maximum(thr_pos_new, thr_pos_old).expand_as(a_new)
    neg_fix = torch.minimum(thr_neg_new, thr_neg_old).expand_as(a_new)
    target = torch.where(old_ok, a_old, torch.zeros_like(a_old))
    target = torch.where(~old_ok & new_ok, a_new, target)
    # Both-wrong entries only exist where the corresponding threshold is finite (a negative or other positive exists).
    target = torch.where(both_wrong & same, pos_fix, target)
    target = torch.where(both_wrong & ~same, neg_fix, target)
    return target / target.sum(dim=1, keepdim=True)


@float32_loss
def rectified_affinity_distillation_loss(
    student_features: torch.Tensor,
    teacher_features: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float = 0.1,
) -> torch.Tensor:
    """LSTKC short-term term ``KL(rectify(A_old) || A_new)`` (batchmean), affinities at ``temperature``."""
    a_new = batch_affinity(student_features, temperature=temperature)
    a_old = batch_affinity(teacher_features.detach(), temperature=temperature)
    return rowwise_kl(rectified_affinity_target(a_new, a_old, labels), a_new)


@float32_loss
@torch.no_grad()
def affinity_discrepancy_fusion_weight(
    new_features: torch.Tensor,
    old_features: torch.Tensor,
    *,
    temperature: float = 0.01,
    chunk_size: int = 1024,
) -> float:
    """LSTKC long-term fusion weight of the new model: ``clamp(1 - mean_i sum_j |A_new_ij - A_old_ij|, 0, 1)``.

    ``new_features`` / ``old_features`` are the two models' features of the same N training images, (N, D). The N x N
    affinities are computed ``chunk_size`` rows at a time so memory stays O(chunk_size * N).
    """
    if new_features.shape[0] != old_features.shape[0] or new_features.dim() != 2 or old_features.dim() != 2:
        raise ValueError(
            "affinity_discrepancy_fusion_weight: need (N, D) features of the same N images, got "
            f"{tuple(new_features.shape)} and {tuple(old_features.shape)}"
        )
    n = new_features.shape[0]
    if n == 0:
        raise ValueError("affinity_discrepancy_fusion_weight: no features")
    new_n = F.normalize(new_features, dim=1)
    old_n = F.normalize(old_features, dim=1)
    total = 0.0
    for start in range(0, n, chunk_size):
        rows = slice(start, start + chunk_size)
        a_new = torch.softmax(new_n[rows] @ new_n.t() / temperature, dim=1)
        a_old = torch.softmax(old_n[rows] @ old_n.t() / temperature, dim=1)
        total += float((a_new - a_old).abs().sum())
    return float(min(1.0, max(0.0, 1.0 - total / n)))
