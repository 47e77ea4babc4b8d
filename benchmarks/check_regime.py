"""Check a leaderboard run against the regime the default benchmark aims for (the criteria of docs/results.md).

Reads the tidy ``metrics.csv`` of every run under the RUN_DIR folders (the seeds of one board may be split over
several) and, for L2P's baseline, under --random-backbone, and prints each criterion with its measured value, per
seed and over seeds:

1. fine-tuning reaches >= 50 mAP on every dataset right after learning it;
2. Joint is >= 8 points of final seen-average mAP above fine-tuning (paired by seed);
3. fine-tuning's average forgetting is >= 15 mAP points;
4. every method's seed standard deviation of final seen-average mAP is <= 1.5 points, and L2P is >= 20 points above
   its random-backbone score.

With ``--subsets K`` it also says how often the spread criterion holds for every K-seed subset of the board's
seeds (same subset for every method), e.g. in how many of the ten 3-seed subsets of a 5-seed board: a 3-seed
standard deviation is itself uncertain by about half its value, so this is how repeatable "<= 1.5 at three seeds"
is.

Example (the committed default and its random-backbone runs):

    .venv/bin/python benchmarks/check_regime.py results/default --random-backbone results/random_backbone
    .venv/bin/python benchmarks/check_regime.py results/default results/default_seeds34 --random-backbone ...
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from ckda_avalanche.reporting.leaderboard import per_run_table
from ckda_avalanche.reporting.tidy_data import load_tidy, run_scores

JUST_LEARNED_MIN = 50.0
JOINT_GAP_MIN = 8.0
FORGETTING_MIN = 15.0
SEED_STD_MAX = 1.5
L2P_GAIN_MIN = 20.0


def summarise_runs(run_dirs: list[Path], protocol: str) -> dict[tuple[str, int], dict]:
    """(method, seed) -> just-learned mAP per dataset, final seen-average mAP and average forgetting (points), from
    the reporting package's own run matrices (finished runs only, datasets in stream order)."""
    try:
        frame = load_tidy(run_dirs)
    except (OSError, ValueError) as err:
        raise SystemExit(f"{' '.join(map(str, run_dirs))}: {err}; expected run folders holding "
                         "<method>/seed<k>/metrics.csv") from err
    frame = frame[frame.protocol == protocol]
    if frame.empty:
        raise SystemExit(f"{' '.join(map(str, run_dirs))}: no finished run with {protocol!r} rows")
    table = per_run_table(frame).set_index(["method", "seed"])
    out = {}
    for run in run_scores(frame):
        matrix = run.matrices["mAP"]
        row = table.loc[(run.method, run.seed)]
        out[(run.method, run.seed)] = {
            "datasets": list(run.datasets),
            "just": [100 * float(matrix[d + 1, d]) for d in range(len(run.datasets))],  # row d + 1: after session d + 1
            "seen": 100 * float(row["seen_mAP"]), "forgetting": 100 * float(row["forgetting_mAP"])}
    return out


def spread_over_subsets(seen: dict[str, dict[int, float]], size: int,
                        limit: float = SEED_STD_MAX) -> tuple[int, int, dict[str, int]]:
    """For every ``size``-seed subset of the seeds all methods share: (number of subsets, subsets in which every
    method's sample std (ddof 1) of ``seen`` is <= ``limit``, method -> subsets in which its own is)."""
    common = sorted(set.intersection(*(set(v) for v in seen.values()))) if seen else []
    if size < 2 or size > len(common):
        raise ValueError(f"--subsets {size}: expected 2..{len(common)} (the seeds every method has: {common})")
    subsets = list(itertools.combinations(common, size))
    own = {m: 0 for m in seen}
    every = 0
    for subset in subsets:
        ok = {m: float(np.std([v[s] for s in subset], ddof=1)) <= limit for m, v in seen.items()}
        every += all(ok.values())
        for m, met in ok.items():
            own[m] += met
    return len(subsets), every, own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    parser.add_argument("--random-backbone", type=Path, help="run folder with l2p trained from --pretrained none")
    parser.add_argument("--protocol", default="paper")
    parser.add_argument("--subsets", type=int, metavar="K",
                        help="also check the spread criterion on every K-seed subset of the seeds")
    args = parser.parse_args()
    runs = summarise_runs(args.run_dirs, args.protocol)
    methods = sorted({m for m, _ in runs})
    seeds = sorted({s for _, s in runs})
    seen = {m: {s: runs[(m, s)]["seen"] for s in seeds if (m, s) in runs} for m in methods}
    print(f"{' '.join(map(str, args.run_dirs))} ({args.protocol} protocol), seeds {seeds}; mAP in points\n")
    verdicts = []

    def verdict(name: str, ok: bool, detail: str) -> None:
        verdicts.append(ok)
        print(f"[{'met' if ok else 'NOT met'}] {name}: {detail}")

    ft = {s: runs[("finetune", s)] for s in seeds if ("finetune", s) in runs}
    if ft:
        datasets = next(iter(ft.values()))["datasets"]
        lows = {d: min(r["just"][i] for r in ft.values()) for i, d in enumerate(datasets)}
        per = "; ".join(d + " " + ", ".join(f"{r['just'][i]:.1f}" for r in ft.values()) for i, d in enumerate(datasets))
        verdict(f"fine-tuning just learned >= {JUST_LEARNED_MIN:g} on every dataset",
                all(v >= JUST_LEARNED_MIN for v in lows.values()), f"per seed: {per}")
        forg = [r["forgetting"] for r in ft.values()]
        verdict(f"fine-tuning forgetting >= {FORGETTING_MIN:g}", np.mean(forg) >= FORGETTING_MIN,
                f"{np.mean(forg):.1f} ± {np.std(forg, ddof=1) if len(forg) > 1 else 0:.1f} "
                f"(per seed {', '.join(f'{f:.1f}' for f in forg)})")
    if ft and "joint" in seen:
        gaps = [seen["joint"][s] - seen["finetune"][s] for s in seeds if s in seen["joint"] and s in seen["finetune"]]
        verdict(f"Joint - fine-tuning >= {JOINT_GAP_MIN:g}", np.mean(gaps) >= JOINT_GAP_MIN,
                f"{np.mean(gaps):+.1f} (per seed {', '.join(f'{g:+.1f}' for g in gaps)})")
    stds = {m: float(np.std(list(v.values()), ddof=1)) for m, v in seen.items() if len(v) > 1}
    if stds:
        worst = max(stds, key=stds.get)
        verdict(f"every seed std <= {SEED_STD_MAX:g}", max(stds.values()) <= SEED_STD_MAX,
                ", ".join(f"{m} {v:.2f}" for m, v in sorted(stds.items(), key=lambda kv: -kv[1]))
                + f" (largest: {worst})")
    if args.random_backbone and "l2p" in seen:
        rand = summarise_runs([args.random_backbone], args.protocol)
        base = {s: r["seen"] for (m, s), r in rand.items() if m == "l2p"}
        common = [s for s in seeds if s in base and s in seen["l2p"]]
        if common:
            gains = [seen["l2p"][s] - base[s] for s in common]
            verdict(f"L2P >= {L2P_GAIN_MIN:g} above its random-backbone score", np.mean(gains) >= L2P_GAIN_MIN,
                    f"{np.mean([seen['l2p'][s] for s in common]):.1f} vs {np.mean([base[s] for s in common]):.1f}: "
                    f"{np.mean(gains):+.1f} (per seed {', '.join(f'{g:+.1f}' for g in gains)})")
    if args.subsets:
        try:
            count, every, own = spread_over_subsets(seen, args.subsets)
        except ValueError as err:
            raise SystemExit(str(err)) from err
        print(f"\nseed std <= {SEED_STD_MAX:g} on {args.subsets}-seed subsets: every method in {every} of {count}; "
              + ", ".join(f"{m} {n}" for m, n in sorted(own.items(), key=lambda kv: kv[1])))
    means = {m: float(np.mean(list(v.values()))) for m, v in seen.items()}
    ranked = sorted(means.items(), key=lambda kv: -kv[1])
    print("\nfinal seen-average mAP: " + ", ".join(f"{m} {v:.1f}" for m, v in ranked))
    print(f"{sum(verdicts)} of {len(verdicts)} criteria met")


if __name__ == "__main__":
    main()
