"""Exactness of the chunked ranker against the straightforward per-query reference (tests/evaluation/reference.py)."""
from __future__ import annotations

import importlib.util
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from ckda_avalanche.evaluation.distance import cosine_distance, l2_normalize
from ckda_avalanche.evaluation.ranking import RankResult, evaluate_features, evaluate_rank

# tests/ is not a package: load the reference loop next to this file under a unique module name
_spec = importlib.util.spec_from_file_location("ckda_ranking_reference", Path(__file__).with_name("reference.py"))
_reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_reference)
reference_rank = _reference.reference_rank

RULES = ("market", "sysu", "none")


def _random_case(rng: np.random.Generator) -> tuple:
    q, g = 40, 150
    return (rng.random((q, g), dtype=np.float32), rng.integers(0, 15, q), rng.integers(0, 15, g),
            rng.integers(1, 7, q), rng.integers(1, 7, g))


def _tie_heavy_case(rng: np.random.Generator) -> tuple:
    d, qp, gp, qc, gc = _random_case(rng)
    return (np.round(d * 3) / 3).astype(np.float32), qp, gp, qc, gc  # only 4 distinct distances


def _sysu_case(rng: np.random.Generator) -> tuple:
    ids = np.arange(12)
    # gallery: one visible image per (id, visible camera), shuffled; query: infrared cams 3 and 6
    gp, gc = np.repeat(ids, 4), np.tile([1, 2, 4, 5], len(ids))
    perm = rng.permutation(len(gp))
    gp, gc = gp[perm], gc[perm]
    qp, qc = rng.integers(0, 14, 50), rng.choice([3, 6], 50)  # ids 12, 13 have no gallery match
    d = rng.random((50, len(gp))).astype(np.float32)
    d[:, ::5] = d[:, 1::5][:, : d[:, ::5].shape[1]]  # some exact ties across identities
    return d, qp, gp, qc, gc


def _market_case(rng: np.random.Generator) -> tuple:
    # junk (-1) and distractor (0) gallery ids, several images per (id, camera), near-duplicate distances
    gp = np.concatenate([rng.integers(1, 20, 160), np.full(20, 0), np.full(10, -1)])
    gc, qp, qc = rng.integers(1, 7, len(gp)), rng.integers(1, 22, 45), rng.integers(1, 7, 45)
    d = rng.random((45, len(gp))).astype(np.float32)
    d[:, 100:120] = d[:, 0:20]
    return d, qp, gp, qc, gc


CASES = {"random": _random_case, "tie_heavy": _tie_heavy_case, "sysu": _sysu_case, "market": _market_case}


def _assert_matches_reference(res: RankResult, ref: dict) -> None:
    np.testing.assert_array_equal(res.valid, ref["valid"])
    np.testing.assert_array_equal(res.cmc, ref["cmc"])
    assert res.num_valid == int(ref["valid"].sum())
    assert np.max(np.abs(res.ap - ref["ap"])) <= 1e-12
    assert np.max(np.abs(res.inp - ref["inp"])) <= 1e-12
    assert abs(res.mAP - ref["mAP"]) <= 1e-12 and abs(res.mINP - ref["mINP"]) <= 1e-12


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_reference(case: str, rule: str) -> None:
    rng = np.random.default_rng(zlib.crc32(f"{case}/{rule}".encode()))  # stable across processes
    d, qp, gp, qc, gc = CASES[case](rng)
    ref = reference_rank(d, qp, gp, qc, gc, max_rank=10, rule=rule)
    for chunk_size, threads in [(None, 1), (1, 1), (7, 2)]:
        res = evaluate_rank(d, qp, gp, qc, gc, max_rank=10, rule=rule, chunk_size=chunk_size, num_threads=threads)
        _assert_matches_reference(res, ref)
    # float64 distances are ranked as given (no rounding to float32)
    d64 = d.astype(np.float64) + rng.random(d.shape) * 1e-12
    _assert_matches_reference(evaluate_rank(d64, qp, gp, qc, gc, max_rank=10, rule=rule, chunk_size=9),
                              reference_rank(d64, qp, gp, qc, gc, max_rank=10, rule=rule))


def test_hand_computed_market_and_none() -> None:
    # gallery: g0 (pid 1, cam 1), g1 (pid 2, cam 2), g2 (pid 1, cam 2), g3 (pid 3, cam 1), g4 (pid 1, cam 3)
    g_pids, g_cams = np.array([1, 2, 1, 3, 1]), np.array([1, 2, 2, 1, 3])
    q_pids, q_cams = np.array([1, 2]), np.array([1, 1])
    d = np.array([[0.1, 0.2, 0.3, 0.5, 0.4],    # query A: order g0 g1 g2 g4 g3
                  [0.9, 0.1, 0.5, 0.3, 0.7]])   # query B: order g1 g3 g2 g4 g0
    # market: A drops g0 (same id and camera) -> g1 x, g2 v, g4 v, g3 x: hits at 2, 3
    #   AP_A = (1/2 + 2/3) / 2 = 7/12, INP_A = 2/3, first hit at rank 2
    #   B keeps everything -> g1 v first: AP_B = 1, INP_B = 1, rank 1
    #   mAP = (7/12 + 1) / 2 = 19/24, mINP = (2/3 + 1) / 2 = 5/6, CMC = [1/2, 1, 1]
    res = evaluate_rank(d, q_pids, g_pids, q_cams, g_cams, max_rank=3, rule="market")
    assert res.mAP == pytest.approx(19 / 24, abs=1e-15) and res.mINP == pytest.approx(5 / 6, abs=1e-15)
    np.testing.assert_allclose(res.cmc, [0.5, 1.0, 1.0], rtol=0, atol=0)
    np.testing.assert_allclose(res.ap, [7 / 12, 1.0], atol=1e-15)
    # none: A keeps g0 -> g0 v, g1 x, g2 v, g4 v, g3 x: hits at 1, 3, 4
    #   AP_A = (1/1 + 2/3 + 3/4) / 3 = 29/36, INP_A = 3/4; B unchanged
    #   mAP = (29/36 + 1) / 2 = 65/72, mINP = (3/4 + 1) / 2 = 7/8, CMC = [1, 1, 1]
    res = evaluate_rank(d, q_pids, g_pids, q_cams, g_cams, max_rank=3, rule="none")
    assert res.mAP == pytest.approx(65 / 72, abs=1e-15) and res.mINP == pytest.approx(7 / 8, abs=1e-15)
    np.testing.assert_array_equal(res.cmc, [1.0, 1.0, 1.0])
    assert res.rank(1) == 1.0 and res.num_valid == 2


def test_hand_computed_sysu() -> None:
    # one camera-3 query of id 1; g5 (id 1, camera 2) and g0 (id 2, camera 2) are dropped whatever their id
    g_pids, g_cams = np.array([2, 2, 2, 3, 1, 1]), np.array([2, 1, 4, 5, 1, 2])
    d = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.05]])
    # kept ranked list: g1 (2), g2 (2), g3 (3), g4 (1): AP = 1/4, INP = 1/4
    # CMC counts identities once: 2, 3, 1 -> first match at rank 3
    res = evaluate_rank(d, [1], g_pids, [3], g_cams, max_rank=4, rule="sysu")
    assert res.mAP == pytest.approx(0.25, abs=1e-15) and res.mINP == pytest.approx(0.25, abs=1e-15)
    np.testing.assert_array_equal(res.cmc, [0.0, 0.0, 1.0, 1.0])
    # a camera-6 query drops nothing: g5 (id 1) comes first
    res = evaluate_rank(d, [1], g_pids, [6], g_cams, max_rank=4, rule="sysu")
    assert res.mAP == pytest.approx((1 / 1 + 2 / 6) / 2, abs=1e-15)
    np.testing.assert_array_equal(res.cmc, [1.0, 1.0, 1.0, 1.0])


def test_ties_keep_gallery_order() -> None:
    # all distances equal: the ranked list is the gallery order, so a match at index 3 is at rank 4
    g_pids, g_cams = np.array([5, 6, 7, 1, 8]), np.zeros(5, dtype=int)
    d = np.full((1, 5), 0.5, dtype=np.float32)
    res = evaluate_rank(d, [1], g_pids, [1], g_cams, max_rank=5, rule="market")
    assert res.mAP == 0.25 and res.mINP == 0.25
    np.testing.assert_array_equal(res.cmc, [0, 0, 0, 1, 1])
    # a strictly closer item still goes first; equal ones after it keep gallery order (stable argsort)
    d2 = np.array([[0.5, 0.5, 0.5, 0.5, 0.1]], dtype=np.float32)
    assert evaluate_rank(d2, [1], g_pids, [1], g_cams, max_rank=5).mAP == 0.2
    # ties between two matches and a non-match: matches 0 and 2 at equal distance -> ranks 1 and 3
    d3 = np.array([[0.3, 0.3, 0.3, 0.9, 0.9]])
    res = evaluate_rank(d3, [1], [1, 2, 1, 3, 4], [0], [1, 1, 1, 1, 1], max_rank=5, rule="none")
    assert res.mAP == pytest.approx((1 + 2 / 3) / 2, abs=1e-15)
    # -0.0 and 0.0 are equal distances (gallery order decides)
    d4 = np.array([[0.0, -0.0, 1.0]])
    assert evaluate_rank(d4, [1], [2, 1, 3], [0], [1, 1, 1], max_rank=3).mAP == 0.5


def test_invalid_queries_skipped_and_all_invalid_raises() -> None:
    g_pids, g_cams = np.array([1, 1, 2]), np.array([1, 2, 1])
    d = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.5, 0.5, 0.5]])
    # query 1: id 9 not in gallery; query 2: id 2 whose only gallery image shares its camera
    res = evaluate_rank(d, [1, 9, 2], g_pids, [1, 1, 1], g_cams, max_rank=3)
    np.testing.assert_array_equal(res.valid, [True, False, False])
    assert res.num_valid == 1 and len(res.ap) == 1 and res.mAP == 1.0  # g0 dropped, g1 first
    with pytest.raises(ValueError, match="no valid query"):
        evaluate_rank(d[1:], [9, 2], g_pids, [1, 1], g_cams, max_rank=3)
    # SYSU: a camera-3 query against a camera-2-only gallery has nothing left
    with pytest.raises(ValueError, match="no valid query"):
        evaluate_rank(d[:1, :2], [1], [1, 1], [3], [2, 2], rule="sysu")


def test_torch_and_numpy_inputs_identical() -> None:
    rng = np.random.default_rng(3)
    d, qp, gp, qc, gc = _tie_heavy_case(rng)
    for rule in RULES:
        a = evaluate_rank(d, qp, gp, qc, gc, rule=rule, chunk_size=6)
        b = evaluate_rank(torch.from_numpy(d), torch.from_numpy(qp), torch.from_numpy(gp), torch.from_numpy(qc),
                          torch.from_numpy(gc), rule=rule, chunk_size=13)
        np.testing.assert_array_equal(a.cmc, b.cmc)
        np.testing.assert_array_equal(a.ap, b.ap)
        assert a.mAP == b.mAP and a.mINP == b.mINP
    # a non-contiguous (Fortran-ordered) matrix ranks the same as its contiguous copy
    fortran = np.asfortranarray(d)
    assert not fortran.flags.c_contiguous
    np.testing.assert_array_equal(evaluate_rank(fortran, qp, gp, qc, gc, chunk_size=5).ap,
                                  evaluate_rank(d, qp, gp, qc, gc).ap)
    half = evaluate_rank(torch.from_numpy(d).half(), qp, gp, qc, gc)
    np.testing.assert_array_equal(half.ap, evaluate_rank(d.astype(np.float16), qp, gp, qc, gc).ap)
    ref = reference_rank(d.astype(np.float16), qp, gp, qc, gc, max_rank=20, rule="market")
    _assert_matches_reference(half, ref)


def test_evaluate_features_equals_explicit_cosine_matrix() -> None:
    gen = torch.Generator().manual_seed(0)
    q, g = torch.randn(30, 16, generator=gen, dtype=torch.float64), torch.randn(90, 16, generator=gen,
                                                                                dtype=torch.float64)
    qp, gp = torch.randint(0, 10, (30,), generator=gen), torch.randint(0, 10, (90,), generator=gen)
    qc, gc = torch.randint(1, 7, (30,), generator=gen), torch.randint(1, 7, (90,), generator=gen)
    explicit = cosine_distance(l2_normalize(q), l2_normalize(g))
    for rule in RULES:
        a = evaluate_features(q, g, qp, gp, qc, gc, rule=rule, chunk_size=7, max_rank=10)
        b = evaluate_rank(explicit, qp, gp, qc, gc, rule=rule, max_rank=10)
        np.testing.assert_array_equal(a.cmc, b.cmc)
        assert np.max(np.abs(a.ap - b.ap)) <= 1e-12 and abs(a.mINP - b.mINP) <= 1e-12
    eu = evaluate_features(q, g, qp, gp, qc, gc, metric="euclidean", rule="none")
    ref = reference_rank(torch.cdist(q, g).numpy(), qp.numpy(), gp.numpy(), qc.numpy(), gc.numpy(),
                         max_rank=20, rule="none")
    _assert_matches_reference(eu, ref)


def test_bad_inputs_raise_clear_errors() -> None:
    d = np.random.default_rng(0).random((2, 3))
    ids, cams = np.array([1, 2, 1]), np.array([1, 1, 1])
    with pytest.raises(ValueError, match="q_pids has 3 entries, expected 2"):
        evaluate_rank(d, ids, ids, [1, 1], cams)
    with pytest.raises(ValueError, match="rule must be one of"):
        evaluate_rank(d, [1, 2], ids, [1, 1], cams, rule="cuhk03")
    with pytest.raises(ValueError, match="g_pids must hold integer ids"):
        evaluate_rank(d, [1, 2], ids.astype(float), [1, 1], cams)
    with pytest.raises(ValueError, match="distmat must be float"):
        evaluate_rank(d.astype(np.int64), [1, 2], ids, [1, 1], cams)
    bad = d.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        evaluate_rank(bad, [1, 2], ids, [1, 1], cams)
    with pytest.raises(ValueError, match="no gallery column"):
        evaluate_rank(np.zeros((2, 0)), [1, 2], [], [1, 1], [])
    with pytest.raises(ValueError, match="metric must be one of"):
        evaluate_features(d, d, [1, 2], [1, 2], [1, 1], [2, 2], metric="manhattan")


def test_infinite_distances_and_short_gallery() -> None:
    g_pids, g_cams = np.array([2, 1, 1, 3]), np.array([1, 1, 2, 1])
    d = np.array([[np.inf, np.inf, 0.2, -np.inf]])
    for rule in RULES:
        _assert_matches_reference(evaluate_rank(d, [1], g_pids, [3], g_cams, max_rank=10, rule=rule),
                                  reference_rank(d, [1], g_pids, [3], g_cams, max_rank=10, rule=rule))
