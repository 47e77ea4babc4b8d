"""Cross-modal centre terms of CKDA (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016; docs/method.md §4.3).

Per identity present in the batch, the visible centre c_v(k) and the infrared centre c_i(k) are batch means of the
pre-BN feature f. L_cent is the batch-hard triplet between the two sets of centres (visible->infrared and
infrared->visible, averaged); L_cross is the batch-hard triplet of visible samples against infrared centres and of
visible centres against infrared samples (averaged). The term added to the loss is w_new * ((1-c) L_cent + c L_cross).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from ckda_avalanche.losses.triplet import cross_batch_hard_triplet
from ckda_avalanche.losses.numerics import float32_loss

__all__ = ["CentreTerms", "modality_centres", "cross_modal_centre_terms", "centre_term"]


class CentreTerms(NamedTuple):
    """The two cross-modal centre losses before weighting."""

    cent: torch.Tensor
    """L_cent: visible centres vs infrared centres, both directions averaged."""
    cross: torch.Tensor
    """L_cross: visible samples vs infrared centres and visible centres vs infrared samples, averaged."""


@float32_loss
def modality_centres(features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean feature per label, returned as (centres (n, D), labels (n,)), labels sorted ascending."""
    unique, inverse = torch.unique(labels, sorted=True, return_inverse=True)
    sums = torch.zeros(unique.numel(), features.shape[1], dtype=features.dtype, device=features.device)
    sums.index_add_(0, inverse, features)
    counts = torch.bincount(inverse, minlength=unique.numel()).to(features.dtype).unsqueeze(1)
    return sums / counts, unique


@float32_loss
def cross_modal_centre_terms(
    features: torch.Tensor, labels: torch.Tensor, modality: torch.Tensor, *, margin: float = 0.1
) -> CentreTerms:
    """L_cent and L_cross for one batch (modality 0 = visible, 1 = infrared).

    A batch with only one modality has no cross-modal pair: both terms are a zero still attached to the graph.
    """
    visible = modality == 0
    infrared = modality == 1
    zero = features.sum() * 0.0
    if not bool(visible.any()) or not bool(infrared.any()):
        return CentreTerms(zero, zero)
    feat_v, lab_v = features[visible], labels[visible]
    feat_i, lab_i = features[infrared], labels[infrared]
    cent_v, ids_v = modality_centres(feat_v, lab_v)
    cent_i, ids_i = modality_centres(feat_i, lab_i)
    cent = 0.5 * (
        cross_batch_hard_triplet(cent_v, ids_v, cent_i, ids_i, margin=margin)
        + cross_batch_hard_triplet(cent_i, ids_i, cent_v, ids_v, margin=margin)
    )
    cross = 0.5 * (
        cross_batch_hard_triplet(feat_v, lab_v, cent_i, ids_i, margin=margin)
        + cross_batch_hard_triplet(cent_v, ids_v, feat_i, lab_i, margin=margin)
    )
    return CentreTerms(cent, cross)


@float32_loss
def centre_term(terms: CentreTerms, *, w_new: float = 1.0, c: float = 0.5) -> torch.Tensor:
    """w_new * ((1 - c) * L_cent + c * L_cross), the weighting of docs/method.md §4.3."""
    return w_new * ((1.0 - c) * terms.cent + c * terms.cross)
