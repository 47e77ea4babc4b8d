"""Retrieval distances between query and gallery features, computed in query chunks.

The VI-ReID protocol ranks galleries by the cosine distance between L2-normalised retrieval features
(docs: ``docs/protocol.md``, "Evaluation rules"); ``iter_distance_chunks`` lets the ranker consume a
Q x G distance matrix a few rows at a time so that it never exists in full.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

METRICS = ("cosine", "euclidean")


def _as_feature_tensor(x: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(x)
    if tensor.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (num_items, dim) feature array, got shape {tuple(tensor.shape)}")
    if not tensor.is_floating_point():
        raise ValueError(f"{name} must hold floating-point features, got dtype {tensor.dtype}")
    return tensor.detach()


def l2_normalize(x: torch.Tensor | np.ndarray, *, dim: int = 1, eps: float = 1e-12) -> torch.Tensor:
    """Scale each feature vector to unit L2 norm (``torch.nn.functional.normalize``; zero vectors stay zero)."""
    return F.normalize(torch.as_tensor(x), p=2.0, dim=dim, eps=eps)


def _check_pair(q: torch.Tensor, g: torch.Tensor) -> None:
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"query features have dim {q.shape[1]} but gallery features have dim {g.shape[1]}")


def _chunk_distance(q: torch.Tensor, g: torch.Tensor, metric: str) -> torch.Tensor:
    if metric == "cosine":
        return 1.0 - q @ g.T
    if metric == "euclidean":
        return torch.cdist(q, g, p=2.0, compute_mode="donot_use_mm_for_euclid_dist")
    raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")


def cosine_distance(q: torch.Tensor | np.ndarray, g: torch.Tensor | np.ndarray, *,
                    chunk_size: int = 4096) -> torch.Tensor:
    """Full (Q, G) cosine distance ``1 - q @ g.T`` for L2-normalised features (not re-normalised here).

    Rows are computed ``chunk_size`` queries at a time into one preallocated output, so the only extra memory is
    the output itself. Use ``iter_distance_chunks`` when the full matrix is not needed.
    """
    q_t, g_t = _as_feature_tensor(q, "q"), _as_feature_tensor(g, "g")
    _check_pair(q_t, g_t)
    dtype = torch.promote_types(q_t.dtype, g_t.dtype)
    q_t, g_t = q_t.to(dtype), g_t.to(dtype)
    out = torch.empty(q_t.shape[0], g_t.shape[0], dtype=dtype, device=q_t.device)
    for start in range(0, q_t.shape[0], max(1, chunk_size)):
        stop = start + max(1, chunk_size)
        out[start:stop] = _chunk_distance(q_t[start:stop], g_t, "cosine")
    return out


def iter_distance_chunks(q: torch.Tensor | np.ndarray, g: torch.Tensor | np.ndarray, *, metric: str = "cosine",
                         chunk_size: int = 256, rows: np.ndarray | None = None,
                         normalize: bool = True) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """Yield ``(query_indices, distances)`` for successive chunks of at most ``chunk_size`` queries.

    ``rows`` selects (and orders) the queries to visit (default: all, in order); ``distances`` is the
    ``(len(query_indices), G)`` block. With ``metric="cosine"`` and ``normalize=True`` the features are
    L2-normalised first; ``"euclidean"`` is the plain L2 distance.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    q_t, g_t = _as_feature_tensor(q, "q_feats"), _as_feature_tensor(g, "g_feats")
    _check_pair(q_t, g_t)
    dtype = torch.promote_types(q_t.dtype, g_t.dtype)
    g_t = g_t.to(dtype)
    if metric == "cosine" and normalize:
        g_t = l2_normalize(g_t)
    order = np.arange(q_t.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    for start in range(0, len(order), chunk_size):
        idx = order[start:start + chunk_size]
        q_chunk = q_t[torch.from_numpy(idx).to(q_t.device)].to(dtype)
        if metric == "cosine" and normalize:
            q_chunk = l2_normalize(q_chunk)
        yield idx, _chunk_distance(q_chunk, g_t, metric)
