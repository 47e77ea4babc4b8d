"""Exact ranks of the true matches for one chunk of queries (the inner kernel of `ranking.evaluate_rank`).

Ordering convention (documented in `ranking.py`): each query's gallery is ranked by ascending distance and equal
distances keep gallery order, i.e. the order of ``np.argsort(row, kind="stable")``. Equivalently every gallery item
``k`` has the key ``(d_k, k)`` and the 1-based rank of a true match ``t`` among the kept items is

    rank_t = 1 + #{kept k : (d_k, k) < (d_t, t)}   (lexicographic).

Instead of argsorting every row (what fast-reid's Cython ranker does) the kernel only needs those counts for the few
true matches of each query, and the items that can be dropped or matched share the query identity, so they form a
small per-query "block" of gallery columns (all gallery items with the query's id):

* ``#{all k : d_k < d_t}`` and ``#{all k : d_k <= d_t}`` come from `_row_counts.count_below`: one value-only sort
  of the row (numpy's SIMD sort, much cheaper than an argsort) and a batched ``torch.searchsorted`` of the match
  distances, or a radix order of the row where that is faster (chosen by timing, once per process);
* the block is handled exactly with small ``C x M x M`` comparisons on (distance, column) keys, which removes the
  dropped same-id items (Market rule) and orders the matches among themselves;
* equal distances between a match and a non-block item (rare with real features, common in tie-heavy inputs such
  as rounded or half-precision distances) are resolved exactly by counting, for the affected (query, match) pairs
  only, the equal items earlier in gallery order: one vectorised comparison of the row prefix per tied match (per
  distinct tied distance when a query has many), done in place on the row for wide galleries. On Market-sized
  galleries this costs less than the row sort it sits next to (``benchmarks/bench_ranking.py``).

Column-level drops that do not depend on identity (SYSU-MM01: camera-2 items for camera-3 queries) are handled by
the caller, which passes only the kept columns (in gallery order, so ties keep their meaning).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._row_counts import count_below

__all__ = ["ChunkRanks", "GalleryView", "rank_chunk"]

# Galleries at least this wide count each query's ties with one comparison of its row (no copy); narrower ones
# compare whole batches of tied (query, match) pairs at once, with at most this many pair x column elements.
_TIE_ROW_LOOP_MIN_COLUMNS = 768
_TIE_BATCH_ELEMENTS = 1 << 20
# A query with more tied matches than this compares its row once per distinct tied distance, not once per match.
_TIE_DISTINCT_MIN_PAIRS = 32


@dataclass(frozen=True)
class GalleryView:
    """The gallery columns one group of queries is ranked against, with an index of its identities."""

    columns: np.ndarray | None
    """Original gallery indices of the kept columns (ascending), or None for the whole gallery."""
    pids: np.ndarray
    """Identity of each column of the view (int64)."""
    camids: np.ndarray
    """Camera of each column of the view (int64)."""
    unique_pids: np.ndarray
    """Sorted distinct identities of the view."""
    pid_codes: np.ndarray
    """Position of each column's identity in `unique_pids`."""
    by_pid: np.ndarray
    """Column positions sorted by identity, gallery order kept within an identity (stable)."""
    block_start: np.ndarray
    """First position in `by_pid` of each identity in `unique_pids`."""
    block_size: np.ndarray
    """Number of columns of each identity in `unique_pids`."""

    @classmethod
    def build(cls, *, pids: np.ndarray, camids: np.ndarray, columns: np.ndarray | None) -> "GalleryView":
        """Index the gallery (restricted to `columns` when given) by identity."""
        view_pids = pids if columns is None else pids[columns]
        view_cams = camids if columns is None else camids[columns]
        unique_pids, codes, sizes = np.unique(view_pids, return_inverse=True, return_counts=True)
        by_pid = np.argsort(codes, kind="stable")
        starts = np.zeros_like(sizes)
        np.cumsum(sizes[:-1], out=starts[1:])
        return cls(columns=columns, pids=view_pids, camids=view_cams, unique_pids=unique_pids,
                   pid_codes=codes.reshape(-1), by_pid=by_pid, block_start=starts, block_size=sizes)


@dataclass(frozen=True)
class ChunkRanks:
    """Per-query results of one chunk (all arrays have one entry per query of the chunk)."""

    valid: np.ndarray
    """True where the query has at least one kept true match."""
    ap: np.ndarray
    """Average precision (0 where invalid)."""
    inp: np.ndarray
    """Inverse negative penalty: matches / rank of the last match (0 where invalid)."""
    cmc_rank: np.ndarray
    """1-based CMC rank of the first true match (identity-deduplicated for the SYSU rule; 0 where invalid)."""


def _query_blocks(view: GalleryView, q_pids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns of the gallery items sharing each query's identity, padded: (cols C x B, valid C x B)."""
    code = np.searchsorted(view.unique_pids, q_pids)
    code_clipped = np.minimum(code, len(view.unique_pids) - 1)
    present = view.unique_pids[code_clipped] == q_pids
    size = np.where(present, view.block_size[code_clipped], 0)
    width = max(int(size.max(initial=0)), 1)
    offset = np.arange(width)
    valid = offset[None, :] < size[:, None]
    pos = np.where(valid, view.block_start[code_clipped][:, None] + offset[None, :], 0)
    cols = np.where(valid, view.by_pid[pos], 0)
    return cols, valid


def _equal_before_batched(dist: np.ndarray, rows: np.ndarray, values: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """`_equal_before` for narrow galleries: whole batches of (row, value, col) triples compared at once."""
    out = np.empty(len(rows), dtype=np.int64)
    positions = np.arange(dist.shape[1])
    step = max(_TIE_BATCH_ELEMENTS // dist.shape[1], 1)
    for start in range(0, len(rows), step):
        sl = slice(start, start + step)
        equal = dist[rows[sl]] == values[sl, None]
        equal &= positions[None, :] < cols[sl, None]
        out[sl] = np.count_nonzero(equal, axis=1)
    return out


def _equal_before_by_row(dist: np.ndarray, rows: np.ndarray, values: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """`_equal_before` for wide galleries: one comparison of each row prefix against all its tied values."""
    out = np.empty(len(rows), dtype=np.int64)
    bounds = np.concatenate(([0], np.flatnonzero(np.diff(rows)) + 1, [len(rows)]))
    for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        row_values, row_cols = values[start:stop], cols[start:stop].tolist()
        which = range(stop - start)
        if stop - start > _TIE_DISTINCT_MIN_PAIRS:  # many tied matches: compare each distinct value once
            row_values, inverse = np.unique(row_values, return_inverse=True)
            which = inverse.reshape(-1).tolist()
        equal = dist[rows[start], :max(row_cols)] == row_values[:, None]
        out[start:stop] = [np.count_nonzero(equal[i, :c]) for i, c in zip(which, row_cols)]
    return out


def _equal_before(dist: np.ndarray, rows: np.ndarray, values: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """For each (row, value, col) triple: #{k < col : dist[row, k] == value} (block items included), exactly.

    `rows` must be ascending (as ``np.nonzero`` returns them). The cost is one vectorised comparison pass per
    tied pair (at most one per distinct tied value of a row), far below a stable argsort of the row.
    """
    if dist.shape[1] >= _TIE_ROW_LOOP_MIN_COLUMNS:
        return _equal_before_by_row(dist, rows, values, cols)
    return _equal_before_batched(dist, rows, values, cols)


def _distinct_ids_before(dist: np.ndarray, view: GalleryView, first_value: np.ndarray, first_col: np.ndarray,
                         valid: np.ndarray) -> np.ndarray:
    """Number of distinct gallery identities among the items ranked before each query's first match."""
    positions = np.arange(dist.shape[1])
    before = dist < first_value[:, None]
    before |= (dist == first_value[:, None]) & (positions[None, :] < first_col[:, None])
    before &= valid[:, None]
    rows, cols = np.nonzero(before)
    num_ids = len(view.unique_pids)
    seen = np.zeros(dist.shape[0] * num_ids, dtype=bool)
    seen[rows * num_ids + view.pid_codes[cols]] = True
    return seen.reshape(dist.shape[0], num_ids).sum(axis=1)


def rank_chunk(dist: np.ndarray, q_pids: np.ndarray, q_camids: np.ndarray, view: GalleryView, *,
               drop_same_camera: bool, dedup_identities: bool) -> ChunkRanks:
    """Exact AP, INP and CMC rank for a chunk of queries against the gallery view.

    dist: (C, G_view) float32/float64 distances, columns in view order. drop_same_camera: Market rule (drop gallery
    items with the query's id and camera). dedup_identities: SYSU CMC (each gallery identity counted once).
    """
    if dist.shape[1] == 0:  # e.g. a SYSU camera-3 query against a gallery of camera-2 items only
        zeros = np.zeros(dist.shape[0])
        return ChunkRanks(valid=zeros.astype(bool), ap=zeros, inp=zeros, cmc_rank=zeros.astype(np.int64))
    cols, in_block = _query_blocks(view, q_pids)
    block_d = np.take_along_axis(dist, cols, axis=1)
    kept = in_block.copy()
    if drop_same_camera:
        kept &= view.camids[cols] != q_camids[:, None]
    num_matches = kept.sum(axis=1)
    width = max(int(num_matches.max(initial=0)), 1)
    # Kept matches first, then by distance, then by gallery column (lexsort is stable, block columns ascend).
    order = np.lexsort((block_d, ~kept), axis=-1)[:, :width]
    match_d = np.take_along_axis(block_d, order, axis=1)
    match_col = np.take_along_axis(cols, order, axis=1)
    is_match = np.arange(width)[None, :] < num_matches[:, None]

    less_all, less_equal_all = count_below(dist, match_d)  # whole-row counts (numpy sort or radix order)

    # Block (same-id) items against each match, exactly, on (distance, column) keys: C x width x B.
    bd = block_d[:, None, :]
    lt = (bd < match_d[:, :, None]) & in_block[:, None, :]
    eq = (bd == match_d[:, :, None]) & in_block[:, None, :]
    earlier = cols[:, None, :] < match_col[:, :, None]
    eq_earlier = eq & earlier
    kept_before = ((lt | eq_earlier) & kept[:, None, :]).sum(axis=2)
    non_block_less = less_all - lt.sum(axis=2)
    non_block_equal = less_equal_all - less_all - eq.sum(axis=2)

    non_block_equal_before = np.zeros_like(non_block_less)
    tie_rows, tie_slots = np.nonzero((non_block_equal > 0) & is_match)
    if len(tie_rows):
        all_before = _equal_before(dist, tie_rows, match_d[tie_rows, tie_slots], match_col[tie_rows, tie_slots])
        non_block_equal_before[tie_rows, tie_slots] = all_before - eq_earlier[tie_rows, tie_slots].sum(axis=1)

    ranks = non_block_less + non_block_equal_before + kept_before + 1
    ranks = np.where(is_match, ranks, 1)
    valid = num_matches > 0
    hits = np.arange(1, width + 1, dtype=np.float64)[None, :]
    precision = np.where(is_match, hits / ranks, 0.0)
    safe_m = np.maximum(num_matches, 1)
    ap = np.where(valid, precision.sum(axis=1) / safe_m, 0.0)
    last_rank = np.take_along_axis(ranks, (safe_m - 1)[:, None], axis=1)[:, 0]
    inp = np.where(valid, num_matches / last_rank, 0.0)

    if dedup_identities:
        first_value = np.where(valid, match_d[:, 0], -np.inf).astype(dist.dtype)
        cmc_rank = _distinct_ids_before(dist, view, first_value, match_col[:, 0], valid) + 1
    else:
        cmc_rank = ranks[:, 0].copy()
    cmc_rank = np.where(valid, cmc_rank, 0)
    return ChunkRanks(valid=valid, ap=ap, inp=inp, cmc_rank=cmc_rank)
