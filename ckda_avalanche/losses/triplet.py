"""Batch-hard triplet loss with a margin on Euclidean distances.

Hermans, Beyer and Leibe, "In Defense of the Triplet Loss for Person Re-Identification" (2017); CKDA
(Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016) uses it on the pre-BNNeck feature f with margin 0.1 (docs/method.md §4).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from ckda_avalanche.losses.numerics import float32_loss

__all__ = ["euclidean_distances", "batch_hard_triplet", "cross_batch_hard_triplet"]


@float32_loss
def euclidean_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distances (|a|, |b|), with a small floor under the square root for finite gradients."""
    squared = (a * a).sum(1, keepdim=True) + (b * b).sum(1).unsqueeze(0) - 2.0 * a @ b.t()
    return squared.clamp_min(1e-12).sqrt()


@float32_loss
def cross_batch_hard_triplet(
    anchors: torch.Tensor,
    anchor_labels: torch.Tensor,
    candidates: torch.Tensor,
    candidate_labels: torch.Tensor,
    *,
    margin: float,
    exclude_self: bool = False,
) -> torch.Tensor:
    """Batch-hard triplet of every anchor against a candidate set (which may be the anchors themselves).

    For each anchor the hardest positive is the farthest candidate with the same label and the hardest negative the
    closest candidate with another label; loss = mean over anchors of relu(d_ap - d_an + margin). Anchors without any
    positive or without any negative among the candidates are left out of the mean; if none is left the loss is a
    zero that still belongs to the graph. ``exclude_self`` drops the diagonal (only when anchors == candidates).
    """
    if anchors.ndim != 2 or candidates.ndim != 2:
        raise ValueError(f"triplet: expected 2-D features, got {tuple(anchors.shape)} and {tuple(candidates.shape)}")
    dist = euclidean_distances(anchors, candidates)
    same = anchor_labels.view(-1, 1) == candidate_labels.view(1, -1)
    positive_mask = same.clone()
    if exclude_self:
        positive_mask.fill_diagonal_(False)
    negative_mask = ~same
    valid = positive_mask.any(1) & negative_mask.any(1)
    if not bool(valid.any()):
        return dist.sum() * 0.0
    hardest_positive = dist.masked_fill(~positive_mask, float("-inf")).max(1).values
    hardest_negative = dist.masked_fill(~negative_mask, float("inf")).min(1).values
    losses = F.relu(hardest_positive[valid] - hardest_negative[valid] + margin)
    return losses.mean()


@float32_loss
def batch_hard_triplet(features: torch.Tensor, labels: torch.Tensor, *, margin: float = 0.1) -> torch.Tensor:
    """Batch-hard triplet over all samples of the batch (CKDA L_tri, both modalities together).

    An anchor is never its own positive; anchors whose identity appears once in the batch are left out of the mean
    (they have no positive pair).
    """
    return cross_batch_hard_triplet(features, labels, features, labels, margin=margin, exclude_self=True)
