"""The modality gap of a test pool: how far a person's infrared features sit from the same person's visible ones.

Two scalars, both on the L2-normalised retrieval features the protocol ranks (tracklet means for HITSZ-VCM, exactly
the features of `feature_pool.evaluate_protocol`), computed from those features without any extra forward pass:

``ratio`` (`MODALITY_GAP_RATIO`): identity-level cross-modality distance ratio, defined by this project,

    ratio = mean_p D(V_p, I_p) / mean_{p != q} D(V_p, I_q),

where ``V_p`` / ``I_p`` are the visible / infrared items of identity ``p``, ``D(A, B)`` the mean cosine distance
``1 - a.b`` over all pairs of ``A x B``, and ``p, q`` run over the identities that have items in both modalities
(``q != p`` over ordered pairs). It compares the distance from a person's infrared images to the same person's
visible images with the distance to other people's visible images: 0 when the two modalities of every person
coincide, 1 when the cross-modality distance carries no identity information at all (a person's infrared images
are as far from their own visible images as from anyone's); lower is better. It is a Fisher-style within / between
ratio restricted to cross-modality pairs, the quantity behind the intra- versus inter-class cross-modality distance
histograms often shown in the visible-infrared ReID literature. Because ``D(A, B) = 1 - mean(A) . mean(B)`` for
unit vectors, it needs only the per-identity, per-modality mean features.

``centroid`` (`MODALITY_GAP_CENTROID`): the modality gap of Liang et al., "Mind the Gap: Understanding the Modality
Gap in Multi-modal Contrastive Representation Learning", NeurIPS 2022: the Euclidean distance between the centre of
the visible features and the centre of the infrared features, ``|| mean_i v_i - mean_j r_j ||_2`` over all visible
items ``v_i`` and infrared items ``r_j`` of the pool (unit-norm features, so it lies in [0, 2]). It measures how far
the two modality clouds sit apart as wholes, whatever the identities.

Both are NaN when undefined (the ratio needs two identities with both modalities; the centroid one item of each).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ckda_avalanche.benchmarks.sample import INFRARED, VISIBLE

__all__ = ["MODALITY_GAP_CENTROID", "MODALITY_GAP_RATIO", "MODALITY_GAP_METRICS", "modality_gap"]

MODALITY_GAP_RATIO = "modality_gap/ratio"
"""Tidy metric name of the identity-level cross-modality distance ratio."""
MODALITY_GAP_CENTROID = "modality_gap/centroid"
"""Tidy metric name of the distance between the modality centres (Liang et al., NeurIPS 2022)."""
MODALITY_GAP_METRICS: tuple[str, ...] = (MODALITY_GAP_RATIO, MODALITY_GAP_CENTROID)
"""Both modality-gap metrics, in report order."""


def modality_gap(features: torch.Tensor, pids: Sequence[int] | np.ndarray,
                 modalities: Sequence[int] | np.ndarray) -> dict[str, float]:
    """Both gap values of unit-norm ``features (N, D)`` with identity ``pids (N,)`` and ``modalities (N,)``.

    Features are used as given (the caller normalises them, as the ranking does); returned as float (float64
    arithmetic), keyed by `MODALITY_GAP_RATIO` and `MODALITY_GAP_CENTROID`.
    """
    feats = torch.as_tensor(features).detach().to(torch.float64).cpu()
    pid = np.asarray(pids, dtype=np.int64).reshape(-1)
    mod = np.asarray(modalities, dtype=np.int64).reshape(-1)
    if feats.ndim != 2 or len(pid) != len(feats) or len(mod) != len(feats):
        raise ValueError(f"modality gap: expected features (N, D) with N pids and N modalities, got features "
                         f"{tuple(feats.shape)}, {len(pid)} pids, {len(mod)} modalities")
    unknown = sorted(set(mod.tolist()) - {VISIBLE, INFRARED})
    if unknown:
        raise ValueError(f"modality gap: modalities must be {VISIBLE} (visible) or {INFRARED} (infrared), "
                         f"got {unknown}")
    vis, ir = mod == VISIBLE, mod == INFRARED
    out = {MODALITY_GAP_RATIO: float("nan"), MODALITY_GAP_CENTROID: float("nan")}
    if vis.any() and ir.any():
        centre_v = feats[torch.from_numpy(vis)].mean(dim=0)
        centre_r = feats[torch.from_numpy(ir)].mean(dim=0)
        out[MODALITY_GAP_CENTROID] = float(torch.linalg.vector_norm(centre_v - centre_r))
    both = np.intersect1d(pid[vis], pid[ir])
    if len(both) >= 2:
        def means(mask: np.ndarray) -> torch.Tensor:
            codes = np.searchsorted(both, pid[mask])
            keep = (codes < len(both)) & (both[np.minimum(codes, len(both) - 1)] == pid[mask])
            index = torch.from_numpy(codes[keep])
            sums = torch.zeros(len(both), feats.shape[1], dtype=torch.float64).index_add_(
                0, index, feats[torch.from_numpy(mask)][torch.from_numpy(keep)])
            counts = torch.bincount(index, minlength=len(both)).to(torch.float64)
            return sums / counts[:, None]

        sim = means(vis) @ means(ir).T  # mean cosine similarity of identity p's visible x identity q's infrared
        n = len(both)
        intra = 1.0 - float(torch.diagonal(sim).mean())
        inter = 1.0 - float((sim.sum() - torch.diagonal(sim).sum()) / (n * (n - 1)))
        out[MODALITY_GAP_RATIO] = intra / inter if inter > 0 else float("nan")
    return out
