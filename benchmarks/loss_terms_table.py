"""Print the per-session mean of every unweighted loss term (the ``loss/<term>`` rows) of a run folder as markdown.

    python benchmarks/loss_terms_table.py results/default --method ckda

Values are averaged over the seeds found; the table shows how small CKA's KL terms are at the published s = 0.1
next to the base loss terms (README, "How small CKA is at the published setting").
"""
from __future__ import annotations

import argparse

from ckda_avalanche.reporting.tidy_data import load_tidy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders or tidy CSV files")
    parser.add_argument("--method", default="ckda", help="method (or variant) name (default: ckda)")
    args = parser.parse_args()
    frame = load_tidy(args.runs, complete_only=False)
    rows = frame[(frame["method"] == args.method) & frame["metric"].str.startswith("loss/")]
    if rows.empty:
        raise SystemExit(f"no loss/<term> rows for method {args.method!r} in {args.runs}")
    table = rows.assign(term=rows["metric"].str.removeprefix("loss/")).pivot_table(
        index="term", columns="train_exp", values="value", aggfunc="mean")
    seeds = sorted(int(s) for s in rows["seed"].unique())
    print(f"{args.method}: mean over seeds {seeds} of each unweighted loss term, per session\n")
    print("| term | " + " | ".join(f"session {int(c)}" for c in table.columns) + " |")
    print("|---|" + "---|" * len(table.columns))
    for term, values in table.iterrows():
        print(f"| {term} | " + " | ".join("-" if v != v else f"{v:.3g}" for v in values) + " |")


if __name__ == "__main__":
    main()
