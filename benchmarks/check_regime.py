"""Check a leaderboard run against the regime the default benchmark aims for (issue 11, section 3).

Reads the tidy ``metrics.csv`` of every run under RUN_DIR (and, for L2P's baseline, under --random-backbone) and
prints each criterion with its measured value, per seed and over seeds:

1. fine-tuning reaches >= 50 mAP on every dataset right after learning it;
2. Joint is >= 8 points of final seen-average mAP above fine-tuning (paired by seed);
3. fine-tuning's average forgetting is >= 15 mAP points;
4. every method's seed standard deviation of final seen-average mAP is <= 1.5 points, and L2P is >= 20 points above
   its random-backbone score.

Example (the committed default and its random-backbone runs):

    .venv/bin/python benchmarks/check_regime.py results/default --random-backbone results/random_backbone
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

JUST_LEARNED_MIN = 50.0
JOINT_GAP_MIN = 8.0
FORGETTING_MIN = 15.0
SEED_STD_MAX = 1.5
L2P_GAIN_MIN = 20.0


def session_matrices(run_dir: Path, protocol: str = "paper") -> dict[tuple[str, int], pd.DataFrame]:
    """(method, seed) -> mAP in points, rows = sessions trained (1-based), columns = datasets in session order."""
    out = {}
    for path in sorted(run_dir.glob("*/seed*/metrics.csv")):
        d = pd.read_csv(path)
        d = d[(d.metric == "mAP") & (d.trial == "mean") & (d.protocol == protocol)]
        if d.empty:
            continue
        order = json.loads((path.parent / "config.json").read_text())["run_config"]["datasets"]  # session order
        m = d.pivot_table(index="train_exp", columns="eval_dataset", values="value") * 100
        if len(m) < len(order):
            print(f"skipped {path.parent}: {len(m)} of {len(order)} sessions finished")
            continue
        out[(str(d.method.iloc[0]), int(d.seed.iloc[0]))] = m[[c for c in order if c in m.columns]]
    if not out:
        raise SystemExit(f"{run_dir}: no */seed*/metrics.csv with {protocol!r} mAP rows")
    return out


def summarise(m: pd.DataFrame) -> dict:
    """Just-learned, final seen-average and average forgetting of one run's matrix."""
    n = min(len(m), m.shape[1])
    just = [float(m.iloc[i, i]) for i in range(n)]
    final = m.iloc[n - 1, :n]
    forgetting = [float(m.iloc[: n - 1, j].max() - m.iloc[n - 1, j]) for j in range(n - 1)]
    return {"just": just, "seen": float(final.mean()), "forgetting": float(np.mean(forgetting)) if forgetting else 0.0,
            "datasets": list(m.columns[:n])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--random-backbone", type=Path, help="run folder with l2p trained from --pretrained none")
    parser.add_argument("--protocol", default="paper")
    args = parser.parse_args()
    runs = {k: summarise(m) for k, m in session_matrices(args.run_dir, args.protocol).items()}
    methods = sorted({m for m, _ in runs})
    seeds = sorted({s for _, s in runs})
    seen = {m: {s: runs[(m, s)]["seen"] for s in seeds if (m, s) in runs} for m in methods}
    print(f"{args.run_dir} ({args.protocol} protocol), seeds {seeds}; mAP in points\n")
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
        rand = {k: summarise(m) for k, m in session_matrices(args.random_backbone, args.protocol).items()}
        base = {s: r["seen"] for (m, s), r in rand.items() if m == "l2p"}
        common = [s for s in seeds if s in base and s in seen["l2p"]]
        if common:
            gains = [seen["l2p"][s] - base[s] for s in common]
            verdict(f"L2P >= {L2P_GAIN_MIN:g} above its random-backbone score", np.mean(gains) >= L2P_GAIN_MIN,
                    f"{np.mean([seen['l2p'][s] for s in common]):.1f} vs {np.mean([base[s] for s in common]):.1f}: "
                    f"{np.mean(gains):+.1f} (per seed {', '.join(f'{g:+.1f}' for g in gains)})")
    print("\nfinal seen-average mAP: " + ", ".join(
        f"{m} {np.mean(list(v.values())):.1f}" for m, v in sorted(seen.items(), key=lambda kv: -np.mean(list(kv[1].values())))))
    print(f"{sum(verdicts)} of {len(verdicts)} criteria met")


if __name__ == "__main__":
    main()
