"""Tie-heavy inputs: the ranker must equal a float64 stable-sort reference exactly.

The reference below is written independently of ``ckda_avalanche.evaluation`` (and of ``reference.py``): each query's
gallery is put in the order of ``np.argsort(row_as_float64, kind="stable")`` (equal distances keep gallery order),
the rule's drops are applied to that list, and AP / INP / CMC are read off the 1-based ranks of the true matches.
Every code path of the tie counting in `evaluation.chunk_ranks.rank_chunk` (narrow galleries, wide galleries, many
tied matches of one query) is forced in turn on the same data.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ckda_avalanche.evaluation import chunk_ranks
from ckda_avalanche.evaluation.ranking import RankResult, evaluate_rank

RULES = ("market", "sysu", "none")


def stable_sort_reference(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, q_cams: np.ndarray,
                          g_cams: np.ndarray, *, rule: str, max_rank: int) -> dict:
    """CMC / AP / INP per the protocol, from float64 stable argsort order."""
    d64 = np.asarray(distmat, dtype=np.float64)  # widening is exact: the same ties, the same order
    valid, ap, inp, first_rank = [], [], [], []
    for i in range(len(q_pids)):
        order = np.argsort(d64[i], kind="stable")
        if rule == "market":
            dropped = (g_pids == q_pids[i]) & (g_cams == q_cams[i])
        elif rule == "sysu":
            dropped = np.full(len(g_pids), q_cams[i] == 3) & (g_cams == 2)
        else:
            dropped = np.zeros(len(g_pids), dtype=bool)
        ranked = order[~dropped[order]]
        hit_ranks = np.flatnonzero(g_pids[ranked] == q_pids[i]) + 1  # 1-based ranks of the true matches
        valid.append(len(hit_ranks) > 0)
        if not len(hit_ranks):
            continue
        ap.append(float(np.mean(np.arange(1, len(hit_ranks) + 1) / hit_ranks)))
        inp.append(len(hit_ranks) / float(hit_ranks[-1]))
        if rule == "sysu":  # CMC counts each gallery identity once
            first_rank.append(len(set(g_pids[ranked[:hit_ranks[0] - 1]].tolist())) + 1)
        else:
            first_rank.append(int(hit_ranks[0]))
    first = np.asarray(first_rank)
    cmc = np.array([np.mean(first <= k) for k in range(1, max_rank + 1)])
    return {"valid": np.asarray(valid), "ap": np.asarray(ap), "inp": np.asarray(inp), "cmc": cmc}


def _assert_equal_to_reference(res: RankResult, ref: dict) -> None:
    np.testing.assert_array_equal(res.valid, ref["valid"])
    np.testing.assert_array_equal(res.cmc, ref["cmc"])  # every CMC rank, exactly
    np.testing.assert_allclose(res.ap, ref["ap"], rtol=0, atol=1e-14)
    np.testing.assert_allclose(res.inp, ref["inp"], rtol=0, atol=1e-14)
    assert res.mAP == pytest.approx(float(np.mean(ref["ap"])), abs=1e-14)
    assert res.mINP == pytest.approx(float(np.mean(ref["inp"])), abs=1e-14)


def _tied_case(seed: int, num_gallery: int, num_query: int = 24) -> tuple:
    """Distances rounded to 0.05 (21 values) with exact duplicate columns, junk (-1) and distractor (0) ids.

    Identity 1 has 60 gallery images (more than ``_TIE_DISTINCT_MIN_PAIRS`` tied matches for its queries), with
    images on the queries' cameras and others; SYSU-style cameras: queries on 3 or 6, gallery on 1, 2, 4 or 5.
    """
    rng = np.random.default_rng(seed)
    g_pids = rng.integers(2, 2 + num_gallery // 12, num_gallery)
    g_pids[rng.choice(num_gallery, 60, replace=False)] = 1
    g_pids[:20] = -1  # junk
    g_pids[20:40] = 0  # distractors
    g_cams = rng.choice([1, 2, 4, 5], num_gallery)
    q_pids = rng.choice(np.unique(g_pids[g_pids > 0]), num_query)
    q_pids[:6] = 1
    q_cams = rng.choice([3, 6], num_query)
    d = np.round(rng.random((num_query, num_gallery)) / 0.05) * 0.05
    dup = rng.choice(num_gallery, num_gallery // 4, replace=False)
    d[:, dup] = d[:, rng.choice(num_gallery, len(dup))]  # exact duplicates of other columns (any id, any camera)
    # Market-style same-camera items tied with kept matches and with non-matches: give some gallery items the
    # query's camera and a distance equal to one of its true matches
    for i in range(num_query):
        same_id = np.flatnonzero(g_pids == q_pids[i])
        g_cams[same_id[: len(same_id) // 3]] = q_cams[i]
        d[i, same_id[::2]] = d[i, same_id[0]]
    return d.astype(np.float32), q_pids, g_pids, q_cams, g_cams


# (min gallery width for the per-row loop, min tied matches for per-distinct-value comparison): every tie path
TIE_PATHS = {"batched": (10**9, 32), "by_row": (1, 10**9), "by_row_distinct": (1, 0)}


@pytest.mark.parametrize("path", sorted(TIE_PATHS))
@pytest.mark.parametrize("rule", RULES)
def test_tie_heavy_equals_stable_sort_reference(path: str, rule: str, monkeypatch: pytest.MonkeyPatch) -> None:
    min_cols, min_pairs = TIE_PATHS[path]
    monkeypatch.setattr(chunk_ranks, "_TIE_ROW_LOOP_MIN_COLUMNS", min_cols)
    monkeypatch.setattr(chunk_ranks, "_TIE_DISTINCT_MIN_PAIRS", min_pairs)
    d, qp, gp, qc, gc = _tied_case(seed=RULES.index(rule), num_gallery=400)
    ref = stable_sort_reference(d, qp, gp, qc, gc, rule=rule, max_rank=50)
    assert ref["valid"].sum() >= 20
    for chunk_size, threads in [(None, 1), (5, 2)]:
        res = evaluate_rank(d, qp, gp, qc, gc, max_rank=50, rule=rule, chunk_size=chunk_size, num_threads=threads)
        _assert_equal_to_reference(res, ref)


@pytest.mark.parametrize("rule", RULES)
def test_wide_tie_heavy_gallery_default_paths(rule: str) -> None:
    # wider than _TIE_ROW_LOOP_MIN_COLUMNS: the default per-row path, float32 / float16 / float64 / torch inputs
    assert chunk_ranks._TIE_ROW_LOOP_MIN_COLUMNS <= 1500
    d, qp, gp, qc, gc = _tied_case(seed=10 + RULES.index(rule), num_gallery=1500, num_query=16)
    ref = stable_sort_reference(d, qp, gp, qc, gc, rule=rule, max_rank=20)
    _assert_equal_to_reference(evaluate_rank(d, qp, gp, qc, gc, max_rank=20, rule=rule), ref)
    _assert_equal_to_reference(evaluate_rank(torch.from_numpy(d), qp, gp, qc, gc, max_rank=20, rule=rule,
                                             chunk_size=3), ref)
    _assert_equal_to_reference(evaluate_rank(d.astype(np.float64), qp, gp, qc, gc, max_rank=20, rule=rule), ref)
    half = d.astype(np.float16)  # half precision: its own ties, ranked exactly after widening
    _assert_equal_to_reference(evaluate_rank(half, qp, gp, qc, gc, max_rank=20, rule=rule),
                               stable_sort_reference(half, qp, gp, qc, gc, rule=rule, max_rank=20))


@pytest.mark.parametrize("min_cols", [1, 10**9])
def test_signed_zeros_infinities_and_negative_ties(min_cols: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chunk_ranks, "_TIE_ROW_LOOP_MIN_COLUMNS", min_cols)
    rng = np.random.default_rng(7)
    _, qp, gp, qc, gc = _tied_case(seed=7, num_gallery=300, num_query=12)
    values = np.array([-np.inf, -1.5, -0.0, 0.0, 0.25, np.inf], dtype=np.float32)
    d = values[rng.integers(0, len(values), (12, 300))]  # -0.0 and 0.0 are equal distances
    for rule in RULES:
        _assert_equal_to_reference(evaluate_rank(d, qp, gp, qc, gc, max_rank=30, rule=rule),
                                   stable_sort_reference(d, qp, gp, qc, gc, rule=rule, max_rank=30))


def test_hand_computed_ties_across_cameras_and_junk() -> None:
    # query: id 1, camera 1; every gallery distance is 0.5 except g6 (0.1) and g7 (0.9)
    #   g0 id 1 cam 1 (same camera: dropped under market)  g1 id -1 (junk, kept)  g2 id 1 cam 2
    #   g3 id 7 cam 1                                      g4 id 1 cam 1 (dropped) g5 id 1 cam 3
    #   g6 id 8 cam 2 (0.1)                                g7 id 1 cam 2 (0.9)
    g_pids = np.array([1, -1, 1, 7, 1, 1, 8, 1])
    g_cams = np.array([1, 4, 2, 1, 1, 3, 2, 2])
    d = np.array([[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.1, 0.9]], dtype=np.float32)
    # market list: g6 x, g1 x, g2 v, g3 x, g5 v, g7 v -> hits at 3, 5, 6
    res = evaluate_rank(d, [1], g_pids, [1], g_cams, max_rank=6, rule="market")
    assert res.ap[0] == pytest.approx((1 / 3 + 2 / 5 + 3 / 6) / 3, abs=1e-15)
    assert res.inp[0] == pytest.approx(3 / 6, abs=1e-15)
    np.testing.assert_array_equal(res.cmc, [0, 0, 1, 1, 1, 1])
    # none: g6 x, g0 v, g1 x, g2 v, g3 x, g4 v, g5 v, g7 v -> hits at 2, 4, 6, 7, 8
    res = evaluate_rank(d, [1], g_pids, [1], g_cams, max_rank=8, rule="none")
    assert res.ap[0] == pytest.approx((1 / 2 + 2 / 4 + 3 / 6 + 4 / 7 + 5 / 8) / 5, abs=1e-15)
    assert res.inp[0] == pytest.approx(5 / 8, abs=1e-15)
    # sysu, camera-3 query: drops g2, g6, g7 (camera 2) -> g0 v, g1, g3, g4 v, g5 v; identities once: rank 1
    res = evaluate_rank(d, [1], g_pids, [3], g_cams, max_rank=3, rule="sysu")
    assert res.ap[0] == pytest.approx((1 / 1 + 2 / 4 + 3 / 5) / 3, abs=1e-15)
    np.testing.assert_array_equal(res.cmc, [1, 1, 1])


@pytest.mark.parametrize("min_cols", [1, 10**9])
def test_equal_before_counts_equal_items_earlier_in_gallery_order(min_cols: int,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chunk_ranks, "_TIE_ROW_LOOP_MIN_COLUMNS", min_cols)
    monkeypatch.setattr(chunk_ranks, "_TIE_DISTINCT_MIN_PAIRS", 3)
    rng = np.random.default_rng(1)
    dist = rng.integers(0, 4, (6, 40)).astype(np.float32) / 4
    rows = np.repeat(np.arange(6), [0, 1, 2, 5, 9, 3])  # ascending rows, some with many triples
    cols = rng.integers(0, 40, len(rows))
    values = dist[rows, cols]
    expected = [sum(dist[r, k] == v for k in range(c)) for r, v, c in zip(rows, values, cols)]
    np.testing.assert_array_equal(chunk_ranks._equal_before(dist, rows, values, cols), expected)
