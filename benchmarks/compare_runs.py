"""Compare the tidy metric rows of the same (method, seed) runs in two run folders, value by value.

Used to check that a change moved only what it should (e.g. CKDA's rows identical before and after the baselines lost
the pixel prompters) and that a fresh clone reproduces a committed board. Rows are matched on (train_exp,
eval_dataset, protocol, trial, metric); ``train_time_s``, ``memory_bytes/*`` and ``peak_*`` rows are left out (they
measure the machine, not the model). Exit status 1 when any compared pair differs or a run is missing on one side.

    python benchmarks/compare_runs.py results/default /tmp/y/runs/default --seeds 0
    python benchmarks/compare_runs.py results/experiments/prompted_baselines/default_5seeds results/default --methods ckda l2p
    python benchmarks/compare_runs.py OLD/ckda[no_msp+...] NEW/finetune        # method folders: one pair of methods
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ckda_avalanche.evaluation.tidy_logger import MEASURED_METRICS

KEY = ["train_exp", "eval_dataset", "protocol", "trial", "metric"]
MACHINE_METRICS = ("train_time_s", "memory_bytes/", "peak_")


def comparable_rows(csv_path: Path, protocol: str | None = None) -> pd.Series:
    """The run's metric values indexed by `KEY`, machine measurements left out (optionally one protocol only)."""
    frame = pd.read_csv(csv_path)
    frame = frame[~frame["metric"].str.startswith(MACHINE_METRICS)]
    if protocol is not None:
        frame = frame[frame["protocol"] == protocol]
    return frame.set_index(KEY)["value"].sort_index()


def compare_pair(a: Path, b: Path, protocol: str | None = None) -> tuple[bool, str]:
    """(identical, one-line summary) for two ``metrics.csv`` files."""
    ra, rb = comparable_rows(a, protocol), comparable_rows(b, protocol)
    if list(ra.index) != list(rb.index):
        only_a, only_b = len(ra.index.difference(rb.index)), len(rb.index.difference(ra.index))
        return False, f"different rows: {only_a} only in the first, {only_b} only in the second"
    diff = (ra - rb).abs()
    if (ra.to_numpy() == rb.to_numpy()).all():
        return True, f"{len(ra)} rows identical"
    return False, f"{int((diff > 0).sum())} of {len(ra)} rows differ (largest |difference| {diff.max():.3g})"


def run_pairs(a: Path, b: Path, methods: list[str] | None, seeds: list[int] | None) -> list[tuple[str, Path, Path]]:
    """(label, csv in a, csv in b) for every method/seed to compare; method folders compare seed by seed."""
    if any(a.glob("seed*/metrics.csv")):  # two method folders
        names = sorted({p.parent.name for root in (a, b) for p in root.glob("seed*/metrics.csv")})
        return [(seed, a / seed / "metrics.csv", b / seed / "metrics.csv") for seed in names
                if seeds is None or int(seed.removeprefix("seed")) in seeds]
    found = sorted({(p.parent.parent.name, p.parent.name) for root in (a, b) for p in root.glob("*/seed*/metrics.csv")})
    return [(f"{m}/{s}", a / m / s / "metrics.csv", b / m / s / "metrics.csv") for m, s in found
            if (methods is None or m in methods) and (seeds is None or int(s.removeprefix("seed")) in seeds)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path, help="run folder (OUT) or method folder (OUT/<method>)")
    parser.add_argument("second", type=Path, help="the same kind of folder")
    parser.add_argument("--methods", nargs="+", help="only these methods (run folders)")
    parser.add_argument("--seeds", nargs="+", type=int, help="only these seeds")
    parser.add_argument("--protocol", help="only this protocol (default: every protocol in the CSVs)")
    args = parser.parse_args(argv)
    pairs = run_pairs(args.first, args.second, args.methods, args.seeds)
    if not pairs:
        print(f"no <method>/seed<k>/metrics.csv to compare under {args.first} and {args.second}")
        return 1
    all_same = True
    for label, a, b in pairs:
        missing = [str(p) for p in (a, b) if not p.exists()]
        if missing:
            all_same = False
            print(f"{label}: missing {', '.join(missing)}")
            continue
        same, text = compare_pair(a, b, args.protocol)
        all_same &= same
        print(f"{label}: {text}")
    return 0 if all_same else 1


if __name__ == "__main__":
    sys.exit(main())
