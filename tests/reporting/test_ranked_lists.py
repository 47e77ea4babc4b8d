"""Ranked-list pictures: the grid's data on hand-made distance matrices, query choice, and one written PNG."""
from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest

from ckda_avalanche.evaluation.ranking import evaluate_rank
from ckda_avalanche.reporting.ranked_lists import RankedRow, choose_queries, draw_ranked_grid, ranked_rows

# Two queries against five gallery items; expectations worked out by hand below.
DIST = np.array([[0.1, 0.2, 0.5, 0.3, 0.4],
                 [0.2, 0.2, 0.1, 0.2, 0.3]], dtype=np.float32)
Q_PIDS, Q_CAMS = np.array([1, 2]), np.array([1, 1])
G_PIDS, G_CAMS = np.array([1, 2, 1, 3, 1]), np.array([1, 2, 2, 2, 3])


def test_market_rule_drops_the_query_identity_seen_by_its_camera():
    first, second = ranked_rows(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, rule="market", top_k=3)
    # query 0 (id 1, camera 1): item 0 (id 1, camera 1) is dropped; then 1 (0.2, id 2), 3 (0.3, id 3), 4 (0.4, id 1)
    assert first.gallery.tolist() == [1, 3, 4]
    assert first.matches.tolist() == [False, False, True]
    assert first.distances.tolist() == pytest.approx([0.2, 0.3, 0.4])
    assert first.first_match_rank == 3
    assert first.ap == pytest.approx((1 / 3 + 2 / 4) / 2)  # true matches at ranks 3 (item 4) and 4 (item 2)
    # query 1 (id 2): three items tie at 0.2 and keep gallery order: 2 (0.1), 0, 1 (the match), 3
    assert second.gallery.tolist() == [2, 0, 1]
    assert second.matches.tolist() == [False, False, True]
    assert second.first_match_rank == 3 and second.ap == pytest.approx(1 / 3)


def test_rule_none_keeps_every_item_and_queries_can_be_chosen():
    (row,) = ranked_rows(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, rule="none", top_k=2, queries=[0])
    assert row.query == 0 and row.gallery.tolist() == [0, 1] and row.matches.tolist() == [True, False]
    assert row.first_match_rank == 1


def test_sysu_rule_drops_camera_2_for_camera_3_queries_and_counts_identities_once():
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.5],   # camera-3 query: items 0 and 1 (camera 2) are dropped
                     [0.1, 0.2, 0.3, 0.4, 0.5]], dtype=np.float32)  # camera-1 query: nothing dropped
    q_pids, q_cams = np.array([1, 1]), np.array([3, 1])
    g_pids, g_cams = np.array([2, 1, 2, 2, 1]), np.array([2, 2, 1, 1, 1])
    cam3, cam1 = ranked_rows(dist, q_pids, g_pids, q_cams, g_cams, rule="sysu", top_k=3)
    assert cam3.gallery.tolist() == [2, 3, 4] and cam3.matches.tolist() == [False, False, True]
    assert cam3.first_match_rank == 2  # third in the list, but items 2 and 3 are one identity: CMC rank 2
    assert cam3.ap == pytest.approx(1 / 3)  # AP uses the full kept list
    assert cam1.gallery.tolist() == [0, 1, 2] and cam1.first_match_rank == 2


def test_query_without_a_true_match_left_is_invalid():
    dist = np.array([[0.3, 0.1]], dtype=np.float32)
    (row,) = ranked_rows(dist, np.array([1]), np.array([1, 2]), np.array([1]), np.array([1, 2]), rule="market",
                         top_k=5)
    assert row.gallery.tolist() == [1] and not row.valid and row.first_match_rank == 0 and row.ap == 0.0


def test_first_match_ranks_agree_with_the_cmc_of_the_metrics():
    rng = np.random.default_rng(0)
    dist = np.round(rng.random((30, 60)), 1).astype(np.float32)  # many ties
    q_pids, g_pids = rng.integers(0, 6, 30), rng.integers(0, 6, 60)
    q_cams, g_cams = rng.integers(1, 5, 30), rng.integers(1, 5, 60)
    for rule in ("market", "sysu", "none"):
        rows = ranked_rows(dist, q_pids, g_pids, q_cams, g_cams, rule=rule, top_k=10)
        ranks = np.array([r.first_match_rank for r in rows if r.valid])
        result = evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams, rule=rule, max_rank=60)
        cmc = np.array([(ranks <= k).mean() for k in range(1, 61)])
        np.testing.assert_allclose(cmc, result.cmc, atol=1e-12)
        assert np.mean([r.ap for r in rows if r.valid]) == pytest.approx(result.mAP, abs=1e-12)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="rule"):
        ranked_rows(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, rule="bogus", top_k=3)
    with pytest.raises(ValueError, match="query indices"):
        ranked_rows(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, rule="none", top_k=3, queries=[2])


def _row(query, rank, ap):
    return RankedRow(query=query, gallery=np.array([0]), distances=np.array([0.5]), matches=np.array([rank == 1]),
                     first_match_rank=rank, ap=ap)


def test_choose_queries_by_change_and_by_seed():
    before = [_row(0, 1, 1.0), _row(1, 2, 0.5), _row(2, 1, 0.9), _row(3, 0, 0.0), _row(4, 1, 1.0)]
    after = [_row(0, 9, 0.1), _row(1, 2, 0.5), _row(2, 4, 0.2), _row(3, 5, 0.2), _row(4, 1, 0.95)]
    # query 3 is invalid before: never shown; rank changes 8, 0, 3, -, 0 -> queries 0 then 2
    assert choose_queries([before, after], count=2, pick="rank-change") == [0, 2]
    # AP changes 0.9, 0, 0.7, -, 0.05
    assert choose_queries([before, after], count=3, pick="ap-change") == [0, 2, 4]
    drawn = choose_queries([before, after], count=2, pick="random", seed=5)
    assert drawn == choose_queries([before, after], count=2, pick="random", seed=5)
    assert len(drawn) == 2 and 3 not in drawn and drawn == sorted(drawn)
    assert choose_queries([before, after], count=10, pick="random") == [0, 1, 2, 4]


def test_grid_png_is_written(tmp_path):
    rows = ranked_rows(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, rule="market", top_k=3)

    def image(kind, index):
        return np.full((64, 32, 3), 40 if kind == "query" else 200, np.uint8)

    path = draw_ranked_grid(tmp_path / "grid.png", rows=[rows, rows], session_labels=["after 1", "after 4"],
                            query_labels=["IR", "VIS"], row_labels=["id 1", "id 2"], image=image, title="test")
    picture = mpimg.imread(path)
    assert path.stat().st_size > 2_000 and picture.shape[1] > picture.shape[0] > 100
