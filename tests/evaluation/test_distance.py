"""Cosine / euclidean distances and the chunked distance generator."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ckda_avalanche.evaluation.distance import cosine_distance, iter_distance_chunks, l2_normalize


def _feats(n: int, dim: int = 8, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_l2_normalize_gives_unit_rows_and_keeps_zero_rows() -> None:
    x = _feats(5)
    x[2] = 0.0
    y = l2_normalize(x)
    norms = y.norm(dim=1)
    torch.testing.assert_close(norms[[0, 1, 3, 4]], torch.ones(4, dtype=torch.float64))
    assert torch.all(y[2] == 0)
    torch.testing.assert_close(y[0], x[0] / x[0].norm())
    assert isinstance(l2_normalize(x.numpy()), torch.Tensor)


def test_cosine_distance_is_one_minus_cosine_similarity_and_chunking_is_exact() -> None:
    q, g = l2_normalize(_feats(11, seed=1)), l2_normalize(_feats(7, seed=2))
    d = cosine_distance(q, g, chunk_size=3)
    expected = 1.0 - F.cosine_similarity(q[:, None, :], g[None, :, :], dim=2)
    torch.testing.assert_close(d, expected, atol=1e-12, rtol=0)
    assert d.shape == (11, 7) and d.dtype == torch.float64
    full = cosine_distance(q, g, chunk_size=100)
    assert torch.max(torch.abs(d - full)) <= 1e-12
    # identical vectors are at distance 0, opposite ones at 2
    torch.testing.assert_close(cosine_distance(q[:1], torch.cat([q[:1], -q[:1]])),
                               torch.tensor([[0.0, 2.0]], dtype=torch.float64), atol=1e-12, rtol=0)


def test_iter_distance_chunks_covers_requested_rows_in_order() -> None:
    q, g = _feats(10, seed=3, dtype=torch.float32), _feats(6, seed=4, dtype=torch.float32)
    rows = np.array([9, 2, 5, 0, 7])
    seen, blocks = [], []
    for idx, block in iter_distance_chunks(q, g, chunk_size=2, rows=rows):
        assert block.shape == (len(idx), 6) and len(idx) <= 2
        seen.append(idx)
        blocks.append(block)
    np.testing.assert_array_equal(np.concatenate(seen), rows)
    expected = cosine_distance(l2_normalize(q), l2_normalize(g))[torch.from_numpy(rows)]
    torch.testing.assert_close(torch.cat(blocks), expected, atol=1e-6, rtol=0)
    eu = torch.cat([b for _, b in iter_distance_chunks(q, g, metric="euclidean", chunk_size=4)])
    torch.testing.assert_close(eu, torch.cdist(q, g), atol=1e-5, rtol=1e-5)


def test_distance_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="dim 8 but gallery features have dim 4"):
        cosine_distance(_feats(3), _feats(3, dim=4))
    with pytest.raises(ValueError, match="must be a 2-D"):
        cosine_distance(torch.ones(3), _feats(3))
    with pytest.raises(ValueError, match="floating-point"):
        cosine_distance(torch.ones(3, 8, dtype=torch.long), _feats(3))
    with pytest.raises(ValueError, match="metric must be one of"):
        next(iter_distance_chunks(_feats(3), _feats(3), metric="hamming"))
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        next(iter_distance_chunks(_feats(3), _feats(3), chunk_size=0))
