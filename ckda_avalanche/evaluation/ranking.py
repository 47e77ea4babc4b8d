"""Exact, chunked ReID ranking metrics: CMC, mAP and mINP.

Definitions (``docs/protocol.md``, "Evaluation rules"):

* AP of a query = mean over its true matches of (matches so far / 1-based position in the ranked kept list);
  mAP averages AP over valid queries.
* mINP (Ye et al., "Deep Learning for Person Re-identification: A Survey and Outlook", TPAMI 2021) = number of true
  matches / 1-based rank of the last true match, averaged over valid queries.
* CMC[k] = fraction of valid queries whose first true match is within the top k+1 (cumulative, capped at 1).
* Rules: ``"market"`` drops gallery items with the query's id *and* camera; ``"sysu"`` (SYSU-MM01) drops every
  camera-2 gallery item for a camera-3 query, whatever its id, and its CMC counts each gallery identity once (the
  first occurrence in the ranked kept list) while AP/INP use the full kept list; ``"none"`` drops nothing.
* A query with no kept true match is not valid and is skipped; if no query is valid a ``ValueError`` is raised.

Ties: the gallery is ranked by ascending distance and **equal distances keep gallery order** (exactly the order of
``np.argsort(row, kind="stable")``). Exact ranks are computed per query chunk without sorting indices
(see ``chunk_ranks.py``), so neither the ranking nor the features path ever holds a Q x G integer array, and
``evaluate_features`` never holds the Q x G distance matrix. Ties cost little: on a Market-sized matrix rounded to
0.05 (21 distinct values) ranking takes about 1.1-1.3x the time of a tie-free one (``benchmarks/bench_ranking.py``).
"""
from __future__ import annotations

import functools

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from ckda_avalanche.evaluation.chunk_ranks import ChunkRanks, GalleryView, rank_chunk
from ckda_avalanche.evaluation.distance import iter_distance_chunks

RULES = ("market", "sysu", "none")
# SYSU-MM01 all-search rule: camera-3 (indoor infrared) queries never see camera-2 (indoor visible) items.
SYSU_QUERY_CAMERA = 3
SYSU_DROPPED_GALLERY_CAMERA = 2
# Distances handled per chunk when chunk_size is None (about 8 MB of float32).
_AUTO_CHUNK_ELEMENTS = 1 << 21


@dataclass(frozen=True)
class RankResult:
    """Ranking metrics of one query set against one gallery."""

    cmc: np.ndarray
    """CMC curve, float64 of length max_rank: cmc[k] = Rank-(k+1) accuracy over valid queries."""
    mAP: float
    """Mean average precision over valid queries."""
    mINP: float
    """Mean inverse negative penalty over valid queries."""
    ap: np.ndarray
    """Average precision of each valid query (float64, query order)."""
    inp: np.ndarray
    """Inverse negative penalty of each valid query (float64, query order)."""
    valid: np.ndarray
    """Boolean mask over all queries: True where the query had a kept true match."""
    num_valid: int
    """Number of valid queries."""

    def rank(self, k: int) -> float:
        """Rank-k accuracy (1-based k, 1 <= k <= len(cmc))."""
        if not 1 <= k <= len(self.cmc):
            raise ValueError(f"k must be in [1, {len(self.cmc)}], got {k}")
        return float(self.cmc[k - 1])


def _as_ids(x: torch.Tensor | np.ndarray, name: str, length: int | None) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of integer ids, got shape {arr.shape}")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    if length is not None and len(arr) != length:
        raise ValueError(f"{name} has {len(arr)} entries, expected {length}")
    return arr.astype(np.int64, copy=False)


def _check_rule(rule: str, max_rank: int) -> None:
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")


def query_groups(rule: str, q_camids: np.ndarray, g_pids: np.ndarray,
                  g_camids: np.ndarray) -> list[tuple[np.ndarray | None, GalleryView]]:
    """(query indices or None for all queries, gallery view) pairs covering every query exactly once: the rule's
    column drops that do not depend on identity (SYSU-MM01: camera-2 items for camera-3 queries), as every ranking
    of this module applies them (and `reporting.ranked_lists` draws them)."""
    full = GalleryView.build(pids=g_pids, camids=g_camids, columns=None)
    if rule != "sysu":
        return [(None, full)]
    is_cam3 = q_camids == SYSU_QUERY_CAMERA
    if not is_cam3.any():
        return [(None, full)]
    kept_columns = np.flatnonzero(g_camids != SYSU_DROPPED_GALLERY_CAMERA)
    groups: list[tuple[np.ndarray | None, GalleryView]] = [
        (np.flatnonzero(is_cam3), GalleryView.build(pids=g_pids, camids=g_camids, columns=kept_columns))]
    if not is_cam3.all():
        groups.append((np.flatnonzero(~is_cam3), full))
    return groups


def _auto_chunk(chunk_size: int | None, num_gallery: int) -> int:
    if chunk_size is None:
        return max(1, _AUTO_CHUNK_ELEMENTS // max(num_gallery, 1))
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1 or None, got {chunk_size}")
    return chunk_size


def _rows_as_float_numpy(block: torch.Tensor | np.ndarray) -> np.ndarray:
    """A chunk of distances as a float32/float64 numpy array (half precisions are widened exactly)."""
    if isinstance(block, torch.Tensor):
        block = block.detach()
        if block.dtype in (torch.float16, torch.bfloat16):
            block = block.float()
        return block.cpu().numpy()
    if block.dtype == np.float16:
        return block.astype(np.float32)
    return block


class _Accumulator:
    """Collects chunk results into per-query arrays and reduces them to a RankResult."""

    def __init__(self, *, num_queries: int, max_rank: int) -> None:
        self.max_rank = max_rank
        self.valid = np.zeros(num_queries, dtype=bool)
        self.ap = np.zeros(num_queries, dtype=np.float64)
        self.inp = np.zeros(num_queries, dtype=np.float64)
        self.cmc_rank = np.zeros(num_queries, dtype=np.int64)

    def add(self, rows: np.ndarray | slice, part: ChunkRanks) -> None:
        self.valid[rows] = part.valid
        self.ap[rows] = part.ap
        self.inp[rows] = part.inp
        self.cmc_rank[rows] = part.cmc_rank

    def result(self) -> RankResult:
        num_valid = int(self.valid.sum())
        if num_valid == 0:
            raise ValueError("no valid query: every query has no true match left in the gallery after the "
                             "ranking rule's drops, so CMC/mAP/mINP are undefined")
        first = self.cmc_rank[self.valid]
        hist = np.bincount(first[first <= self.max_rank] - 1, minlength=self.max_rank)
        cmc = np.cumsum(hist).astype(np.float64) / num_valid
        ap, inp = self.ap[self.valid], self.inp[self.valid]
        return RankResult(cmc=cmc, mAP=float(np.mean(ap)), mINP=float(np.mean(inp)), ap=ap, inp=inp,
                          valid=self.valid.copy(), num_valid=num_valid)


def _row_chunks(rows: np.ndarray | None, num_queries: int, chunk: int) -> Iterator[np.ndarray | slice]:
    if rows is None:
        for start in range(0, num_queries, chunk):
            yield slice(start, min(start + chunk, num_queries))
    else:
        for start in range(0, len(rows), chunk):
            yield rows[start:start + chunk]


def _rank_rows(distmat: torch.Tensor | np.ndarray, sel: np.ndarray | slice, view: GalleryView,
               qp: np.ndarray, qc: np.ndarray, rule: str) -> ChunkRanks:
    """Read the selected rows of the distance matrix (only the view's columns) and rank them."""
    if isinstance(distmat, torch.Tensor) and not isinstance(sel, slice):
        rows = distmat[torch.from_numpy(sel).to(distmat.device)]
    else:
        rows = distmat[sel]
    block = _rows_as_float_numpy(rows)
    if view.columns is not None:
        block = block[:, view.columns]
    return rank_chunk(block, qp[sel], qc[sel], view, drop_same_camera=rule == "market",
                      dedup_identities=rule == "sysu")


def _run_chunks(tasks: Iterable[tuple[np.ndarray | slice, Callable[[], ChunkRanks]]], acc: _Accumulator,
                num_threads: int | None) -> None:
    """Run chunk tasks, in worker threads when asked, with at most 2 tasks per thread in flight.

    The heavy numpy kernels (sort, comparisons) release the GIL, so threads give real parallelism; the bound on
    tasks in flight keeps memory at a few chunks (``concurrent.futures.Executor.map`` would consume every chunk
    up front, i.e. the whole distance matrix for ``evaluate_features``).
    """
    workers = torch.get_num_threads() if num_threads is None else num_threads
    if workers < 1:
        raise ValueError(f"num_threads must be >= 1 or None, got {num_threads}")
    if workers == 1:
        for sel, task in tasks:
            acc.add(sel, task())
        return
    pending: deque[tuple[np.ndarray | slice, Future[ChunkRanks]]] = deque()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for sel, task in tasks:
            if len(pending) >= 2 * workers:
                done_sel, done = pending.popleft()
                acc.add(done_sel, done.result())
            pending.append((sel, pool.submit(task)))
        while pending:
            done_sel, done = pending.popleft()
            acc.add(done_sel, done.result())


def evaluate_rank(distmat: torch.Tensor | np.ndarray, q_pids: torch.Tensor | np.ndarray,
                  g_pids: torch.Tensor | np.ndarray, q_camids: torch.Tensor | np.ndarray,
                  g_camids: torch.Tensor | np.ndarray, *, max_rank: int = 20, rule: str = "market",
                  chunk_size: int | None = None, num_threads: int | None = None) -> RankResult:
    """CMC / mAP / mINP of a (Q, G) distance matrix (smaller = more similar), exact, in query chunks.

    ``distmat`` may be a numpy array or torch tensor of any float dtype (float16/bfloat16 are widened to float32,
    float32/float64 are ranked as given); ids and cameras are integer arrays or tensors. ``chunk_size`` is the number
    of queries per chunk (None: about 2M distances per chunk); ``num_threads`` worker threads rank chunks in
    parallel (None: ``torch.get_num_threads()``). Equal distances keep gallery order.
    """
    _check_rule(rule, max_rank)
    if not isinstance(distmat, (torch.Tensor, np.ndarray)):
        raise ValueError(f"distmat must be a numpy array or torch tensor, got {type(distmat).__name__}")
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be 2-D (num_query, num_gallery), got shape {tuple(distmat.shape)}")
    floating = distmat.is_floating_point() if isinstance(distmat, torch.Tensor) else (
        distmat.dtype in (np.float16, np.float32, np.float64))
    if not floating:
        raise ValueError(f"distmat must be float16/bfloat16/float32/float64, got dtype {distmat.dtype}")
    num_q, num_g = distmat.shape
    if num_g == 0:
        raise ValueError("distmat has no gallery column (shape (Q, 0)); expected at least one gallery item")
    qp, qc = _as_ids(q_pids, "q_pids", num_q), _as_ids(q_camids, "q_camids", num_q)
    gp, gc = _as_ids(g_pids, "g_pids", num_g), _as_ids(g_camids, "g_camids", num_g)
    acc = _Accumulator(num_queries=num_q, max_rank=max_rank)
    chunk = _auto_chunk(chunk_size, num_g)

    def tasks() -> Iterator[tuple[np.ndarray | slice, Callable[[], ChunkRanks]]]:
        for rows, view in query_groups(rule, qc, gp, gc):
            for sel in _row_chunks(rows, num_q, chunk):
                yield sel, functools.partial(_rank_rows, distmat, sel, view, qp, qc, rule)

    _run_chunks(tasks(), acc, num_threads)
    return acc.result()


def evaluate_features(q_feats: torch.Tensor | np.ndarray, g_feats: torch.Tensor | np.ndarray,
                      q_pids: torch.Tensor | np.ndarray, g_pids: torch.Tensor | np.ndarray,
                      q_camids: torch.Tensor | np.ndarray, g_camids: torch.Tensor | np.ndarray, *,
                      metric: str = "cosine", max_rank: int = 20, rule: str = "market",
                      chunk_size: int | None = None, normalize: bool = True,
                      num_threads: int | None = None) -> RankResult:
    """Rank galleries from features, computing distances one query chunk at a time (never the full Q x G matrix).

    ``metric``: ``"cosine"`` (1 - cosine similarity; features L2-normalised first when ``normalize``) or
    ``"euclidean"``. Other arguments as in ``evaluate_rank``.
    """
    _check_rule(rule, max_rank)
    q_t, g_t = torch.as_tensor(q_feats), torch.as_tensor(g_feats)
    if q_t.ndim != 2 or g_t.ndim != 2:
        raise ValueError(f"q_feats and g_feats must be 2-D (num_items, dim), got shapes {tuple(q_t.shape)} "
                         f"and {tuple(g_t.shape)}")
    num_q, num_g = q_t.shape[0], g_t.shape[0]
    if num_g == 0:
        raise ValueError("g_feats is empty; expected at least one gallery item")
    qp, qc = _as_ids(q_pids, "q_pids", num_q), _as_ids(q_camids, "q_camids", num_q)
    gp, gc = _as_ids(g_pids, "g_pids", num_g), _as_ids(g_camids, "g_camids", num_g)
    acc = _Accumulator(num_queries=num_q, max_rank=max_rank)

    def tasks() -> Iterator[tuple[np.ndarray | slice, Callable[[], ChunkRanks]]]:
        for rows, view in query_groups(rule, qc, gp, gc):
            gallery = g_t if view.columns is None else g_t[torch.from_numpy(view.columns).to(g_t.device)]
            chunk = _auto_chunk(chunk_size, len(view.pids))
            for sel, dist in iter_distance_chunks(q_t, gallery, metric=metric, chunk_size=chunk, rows=rows,
                                                  normalize=normalize):
                yield sel, functools.partial(rank_chunk, _rows_as_float_numpy(dist), qp[sel], qc[sel], view,
                                             drop_same_camera=rule == "market", dedup_identities=rule == "sysu")

    _run_chunks(tasks(), acc, num_threads)
    return acc.result()
