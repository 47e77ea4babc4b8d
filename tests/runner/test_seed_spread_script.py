"""`benchmarks/seed_spread.py`: the split of the seed variance of mAP, against a pairwise reference."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def seed_spread(benchmark_script):
    return benchmark_script("seed_spread")


def _pairwise_reference(groups, weights, aps):
    """Sum over every ordered query pair of w_q w_q' cov_seeds(AP_q, AP_q'), by pair kind."""
    n_seeds, n_q = aps.shape
    parts = {"same_query": 0.0, "same_identity": 0.0, "across_identities": 0.0}
    for q in range(n_q):
        for r in range(n_q):
            cov = np.cov(aps[:, q], aps[:, r], ddof=1)[0, 1]
            kind = "same_query" if q == r else "same_identity" if groups[q] == groups[r] else "across_identities"
            parts[kind] += weights[q] * weights[r] * cov
    return parts


def test_parts_match_pairwise_covariances_and_sum_to_the_seed_variance(seed_spread):
    rng = np.random.default_rng(3)
    groups = np.array(["a", "a", "b", "c", "c", "c"])
    weights = np.array([0.1, 0.1, 0.2, 0.2, 0.2, 0.2])
    aps = rng.uniform(size=(4, 6))
    got = seed_spread.split_variance(groups, weights, aps)
    want = _pairwise_reference(groups, weights, aps)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12)
    assert got["var"] == pytest.approx(np.var(aps @ weights, ddof=1), abs=1e-12)


def test_by_hand_two_queries_of_one_identity_moving_in_opposite_directions(seed_spread):
    # mAP is 0.5 under both seeds: no seed variance, although each query moves by 0.1 (variance 0.02 each).
    aps = np.array([[0.6, 0.4], [0.4, 0.6]])
    got = seed_spread.split_variance(np.array(["p", "p"]), np.array([0.5, 0.5]), aps)
    assert got["var"] == pytest.approx(0.0, abs=1e-15)
    assert got["same_query"] == pytest.approx(0.25 * 0.02 * 2)  # two queries, w^2 * var
    assert got["same_identity"] == pytest.approx(-0.01)
    assert got["across_identities"] == pytest.approx(0.0, abs=1e-15)


def test_flatten_weights_give_the_mean_over_datasets_of_the_mean_over_trials(seed_spread):
    trials = {
        "regdb": [(np.array([1, 1, 2]), np.array([0.9, 0.6, 0.3]))],
        "sysu": [(np.array([5, 6]), np.array([1.0, 0.0])), (np.array([5]), np.array([0.2]))],
    }
    groups, weights, aps = seed_spread.flatten(trials)
    # regdb mAP 0.6; sysu trials 0.5 and 0.2 -> 0.35; mean over the two datasets 0.475
    assert float(weights @ aps) == pytest.approx(0.475)
    assert list(groups) == ["regdb/1", "regdb/1", "regdb/2", "sysu/5", "sysu/6", "sysu/5"]


def test_recorded_query_aps_reproduce_the_logged_map_of_every_session_and_dataset(seed_spread, tiny_synthetic_root,
                                                                                   two_session_config, tmp_path,
                                                                                   capsys):
    from ckda_avalanche.cli import main
    from ckda_avalanche.reporting import load_tidy

    out = tmp_path / "run"
    assert main(["run", "--preset", "test", "--methods", "finetune", "--seeds", "0", "1", "--data", "synthetic",
                 "--synthetic-dir", str(tiny_synthetic_root), "--config", str(two_session_config), "--out", str(out),
                 "--no-progress", "--keep-session-checkpoints", "--formats", "png"]) == 0
    tidy = load_tidy(out / "finetune" / "seed1" / "metrics.csv")
    logged = tidy[(tidy.protocol == "paper") & (tidy.trial == "mean") & (tidy.metric == "mAP")]
    datasets, scores = seed_spread.per_query_ap(out / "finetune" / "seed1", tiny_synthetic_root)
    assert datasets == ["regdb", "sysu"]
    assert sorted(scores) == [(1, "regdb"), (1, "sysu"), (2, "regdb"), (2, "sysu")]
    for row in logged.itertuples():
        _, weights, aps = seed_spread.flatten({row.eval_dataset: scores[(int(row.train_exp), row.eval_dataset)]})
        assert float(weights @ aps) == pytest.approx(row.value, abs=1e-9)
    capsys.readouterr()
    import sys
    argv = sys.argv
    sys.argv = ["seed_spread.py", str(out), "--method", "finetune", "--data", str(tiny_synthetic_root)]
    try:
        seed_spread.main()
    finally:
        sys.argv = argv
    printed = capsys.readouterr().out
    assert "finetune: 2 seeds (seed0, seed1)" in printed
    assert len([line for line in printed.splitlines() if line.split()[:2] == ["2", "seen"]]) == 1
