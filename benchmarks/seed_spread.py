"""Where does the seed spread of mAP come from? Split it into a per-query, a per-identity and a shared part.

The regime criteria ask for a seed standard deviation of final seen mAP <= 1.5 points. Whether more test data can get there
depends on what the spread is made of. This script re-scores the kept session models of several seeds of one
method (runs made with ``--keep-session-checkpoints``), records every query's average precision, and splits the
seed variance of each dataset's mAP into three sums of covariances of the per-query seed deviations:

- **same query**: a query's AP moving with the seed (more test images per identity would average it down);
- **same identity**: queries of one identity moving together (more test identities would average it down);
- **across identities**: the whole model getting better or worse for everyone (no test set size removes it).

A score is a weighted sum of query APs: mAP is the mean over a dataset's trials of each trial's mean AP, the seen
score the mean over datasets. With w[q] that weight and e[k, q] = w[q] * (AP of query q under seed k minus its mean
over seeds), the seed variance of the score is sum_k (sum_q e[k, q])^2 / (n_seeds - 1); the three parts are that
double sum over (q, q') restricted to q = q', to q != q' of one identity, and to queries of different identities.
The per-query APs come from the package's own scoring (`evaluate_rank` returns them; `evaluate_protocol` averages
them away), which the script wraps while it re-scores rather than widening the package's API for a calibration
tool. Example, on a run made with ``ckda run ... --seeds 0 1 2 3 4 --keep-session-checkpoints --out runs/d5``:

    .venv/bin/python benchmarks/seed_spread.py runs/d5 --method dkp --data data/synthetic
"""
from __future__ import annotations

import argparse
import contextlib
from collections import defaultdict
from pathlib import Path
from typing import Iterator

import numpy as np

import ckda_avalanche.evaluation.feature_pool as feature_pool
from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
from ckda_avalanche.models import get_model_config
from ckda_avalanche.runner.reevaluate import find_run_dirs, load_saved_run, rescore_run

Trials = list[tuple[np.ndarray, np.ndarray]]
"""Per trial of one (session, dataset): (query identities, query APs) of the valid queries."""


@contextlib.contextmanager
def recording(into: list[tuple[int, str, np.ndarray, np.ndarray]]) -> Iterator[None]:
    """Append (protocol call index, dataset, query identities, APs) for every trial the package scores (wraps its
    two scoring functions for the duration)."""
    rank, protocol = feature_pool.evaluate_rank, feature_pool.evaluate_protocol
    current = {"call": -1, "dataset": ""}

    def evaluate_protocol(features, samples, proto, *, dataset, **kwargs):
        current["call"] += 1
        current["dataset"] = dataset
        return protocol(features, samples, proto, dataset=dataset, **kwargs)

    def evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, **kwargs):
        result = rank(distmat, q_pids, g_pids, q_camids, g_camids, **kwargs)
        into.append((current["call"], current["dataset"], np.asarray(q_pids)[result.valid], np.asarray(result.ap)))
        return result

    feature_pool.evaluate_rank, feature_pool.evaluate_protocol = evaluate_rank, evaluate_protocol
    try:
        yield
    finally:
        feature_pool.evaluate_rank, feature_pool.evaluate_protocol = rank, protocol


def per_query_ap(run_dir: Path, data: Path) -> tuple[list[str], dict[tuple[int, str], Trials]]:
    """The run's datasets and, per (session, dataset), every trial's (query identities, APs)."""
    saved = load_saved_run(run_dir)
    config = saved.run_config
    datasets = list(config.datasets)
    benchmark = vi_lreid_benchmark(data, datasets=datasets, protocol=config.protocol,
                                   img_size=tuple(get_model_config(config.model).img_size))
    record: list[tuple[int, str, np.ndarray, np.ndarray]] = []
    with recording(record):
        rescore_run(saved, benchmark, protocol=config.protocol, tested=datasets)
    # rescore_run scores sessions 1..S in order, each on every tested dataset once (one protocol call per dataset).
    out: dict[tuple[int, str], Trials] = defaultdict(list)
    for call, dataset, pids, aps in record:
        out[(call // len(datasets) + 1, dataset)].append((pids, aps))
    return datasets, dict(out)


def split_variance(groups: np.ndarray, weights: np.ndarray, aps: np.ndarray) -> dict[str, float]:
    """Seed variance of the score sum_q weights[q] * aps[k, q] (aps: seeds x queries) and its parts: same query,
    same group (identity) and across groups."""
    n_seeds = aps.shape[0]
    dev = (aps - aps.mean(axis=0, keepdims=True)) * weights
    total = float((dev.sum(axis=1) ** 2).sum()) / (n_seeds - 1)
    same_query = float((dev ** 2).sum()) / (n_seeds - 1)
    per_group = np.stack([dev[:, groups == g].sum(axis=1) for g in np.unique(groups)], axis=1)
    same_group = float((per_group ** 2).sum()) / (n_seeds - 1) - same_query
    return {"var": total, "same_query": same_query, "same_identity": same_group,
            "across_identities": total - same_query - same_group}


def flatten(trials_by_dataset: dict[str, Trials]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group labels 'dataset/pid', weights, APs) of every query, weighted so that the weighted sum is the mean
    over datasets of each dataset's mean over trials of mAP."""
    groups, weights, aps = [], [], []
    for dataset, trials in trials_by_dataset.items():
        for pids, ap in trials:
            groups += [f"{dataset}/{p}" for p in pids]
            weights.append(np.full(len(ap), 1.0 / (len(trials_by_dataset) * len(trials) * len(ap))))
            aps.append(ap)
    return np.array(groups), np.concatenate(weights), np.concatenate(aps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="leaderboard run folder (RUN/METHOD/seed<k>/ with kept sessions)")
    parser.add_argument("--method", required=True)
    parser.add_argument("--data", type=Path, required=True, help="the data root the run used")
    args = parser.parse_args()
    runs = find_run_dirs([args.run / args.method])
    if len(runs) < 2:
        parser.error(f"{args.run / args.method}: need at least two seeds, found {len(runs)}")
    scored = [per_query_ap(r, args.data) for r in runs]
    datasets, scores = scored[0][0], [s for _, s in scored]
    print(f"{args.method}: {len(runs)} seeds ({', '.join(r.name for r in runs)}); mAP and its seed std in points; "
          "shares of the seed variance")
    print(f"{'session':>7} {'dataset':>8} {'queries':>7} {'mAP':>6} {'std':>5} {'query':>6} {'ident':>6} {'across':>6}")
    sessions = sorted({k[0] for k in scores[0]})
    for session in sessions:
        rows = [(d, [d]) for d in datasets] + [("seen", datasets[:session])]
        for label, members in rows:
            flat = [flatten({d: s[(session, d)] for d in members}) for s in scores]
            groups, weights = flat[0][0], flat[0][1]
            if any(not np.array_equal(f[0], groups) for f in flat):
                raise ValueError(f"session {session}, {label}: the seeds scored different queries")
            aps = np.stack([f[2] for f in flat])
            parts = split_variance(groups, weights, aps)
            var = max(parts["var"], 1e-12)
            print(f"{session:>7} {label:>8} {len(groups):>7} {100 * float((aps * weights).sum(1).mean()):6.1f} "
                  f"{100 * np.sqrt(parts['var']):5.2f} {parts['same_query'] / var:6.2f} "
                  f"{parts['same_identity'] / var:6.2f} {parts['across_identities'] / var:6.2f}")


if __name__ == "__main__":
    main()
