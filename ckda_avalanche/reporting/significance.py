"""Significance columns of the leaderboard: paired differences to the leader and to a reference, shared ranks.

Within each protocol, rows are sorted by mean final seen-average mAP and the first row is the *leader*. For every
other row and every seed both it and the leader were run with, ``d_seed = seen_mAP(row) - seen_mAP(leader)``; the
row's difference to the leader is the mean of the ``d_seed`` with its 95% Student-t interval (`stats.
paired_difference`). The same is done against the *reference* method (``finetune`` by default: "how much does a
method beat plain fine-tuning").

"Overlaps the leader" is defined on the paired difference, not on two separate intervals: a row **ties with the
leader** when at least two seeds pair up and the 95% interval of its paired difference to the leader contains 0
(the paired t-test at the 5% level does not reject "same mean"). Tied rows share rank 1; every other row is ranked
by its position in the protocol (competition ranking), so a noisy row lower in the table can tie while a steadier
one above it does not. With a single common seed no interval exists and nothing ties.
"""
from __future__ import annotations

import math

import pandas as pd

from .stats import Interval, paired_difference

__all__ = ["DEFAULT_REFERENCE", "RANK_METRIC", "protocol_order", "seed_values", "add_significance",
           "significance_header", "significance_cells"]

DEFAULT_REFERENCE = "finetune"
"""Method the leaderboard compares every row with (plain fine-tuning)."""
RANK_METRIC = "seen_mAP"
"""Per-run value that ranks methods and whose paired differences are reported."""




def protocol_order(protocols: list[str] | pd.Series) -> list[str]:
    """Protocols in report order: ``paper`` first, then the others alphabetically."""
    return sorted({str(p) for p in protocols}, key=lambda p: (p != "paper", p))


def seed_values(runs: pd.DataFrame, method: str, protocol: str, column: str = RANK_METRIC
                ) -> dict[int | tuple[int, int], float]:
    """Replicate -> ``column`` of ``method``'s runs under ``protocol`` in a `leaderboard.per_run_table`. The
    replicate is the seed, or ``(draw, seed)`` when ``runs`` holds several synthetic draws (seed k of two draws
    are two replicates; a paired difference pairs the same seed of the same draw)."""
    chosen = runs[(runs["method"] == method) & (runs["protocol"] == protocol)]
    if "draw" in runs.columns and runs["draw"].nunique() > 1:
        return {(int(d), int(s)): float(v) for d, s, v in zip(chosen["draw"], chosen["seed"], chosen[column])}
    return {int(s): float(v) for s, v in zip(chosen["seed"], chosen[column])}


def _set(row: dict[str, object], prefix: str, diff: Interval | None) -> None:
    nan = float("nan")
    row[f"{prefix}{RANK_METRIC}"] = nan if diff is None else diff.mean
    row[f"{prefix}{RANK_METRIC}_low"] = nan if diff is None else diff.low
    row[f"{prefix}{RANK_METRIC}_high"] = nan if diff is None else diff.high
    row[f"{prefix}pairs"] = nan if diff is None else float(diff.n)


def add_significance(board: pd.DataFrame, runs: pd.DataFrame, *, reference: str = DEFAULT_REFERENCE) -> pd.DataFrame:
    """``board`` (`leaderboard.aggregate_runs`) sorted per protocol, with columns ``rank``, ``tied_with_leader``,
    ``leader``, ``vs_leader_seen_mAP`` (``_low``, ``_high``), ``vs_leader_pairs``, ``reference``,
    ``vs_reference_seen_mAP`` (``_low``, ``_high``), ``vs_reference_pairs`` (NaN for a row against itself, and
    against a reference that was not run)."""
    parts = []
    for protocol in protocol_order(board["protocol"]):
        group = board[board["protocol"] == protocol].sort_values(f"{RANK_METRIC}_mean", ascending=False,
                                                                 kind="stable")
        leader = str(group.iloc[0]["method"])
        leader_values = seed_values(runs, leader, protocol)
        has_reference = reference in set(group["method"])
        reference_values = seed_values(runs, reference, protocol) if has_reference else {}
        extra = []
        for position, method in enumerate(group["method"], start=1):
            values = seed_values(runs, str(method), protocol)
            row: dict[str, object] = {"leader": leader, "reference": reference}
            to_leader = None if method == leader else paired_difference(values, leader_values)
            _set(row, "vs_leader_", to_leader)
            _set(row, "vs_reference_",
                 None if (method == reference or not has_reference) else paired_difference(values, reference_values))
            tied = method == leader or (to_leader is not None and to_leader.n >= 2 and to_leader.contains(0.0))
            row["tied_with_leader"] = bool(tied)
            row["rank"] = 1 if tied else position
            extra.append(row)
        merged = pd.concat([group.reset_index(drop=True), pd.DataFrame.from_records(extra)], axis=1)
        parts.append(merged)
    out = pd.concat(parts, ignore_index=True)
    out.insert(0, "rank", out.pop("rank"))
    return out


def _points(value: float) -> str:
    return f"{100 * value:+.1f}"


def _diff_cell(mean: float, low: float, high: float, pairs: float, seeds: int) -> str:
    if math.isnan(pairs) or pairs == 0:
        return "–"
    text = _points(mean)
    if pairs >= 2:
        text += f" [{_points(low)}, {_points(high)}]"
    if pairs < seeds:
        text += f" (n={int(pairs)})"
    return text


def significance_header(board: pd.DataFrame) -> list[str]:
    """Markdown column titles of the significance cells of ``board``."""
    header = ["Δ vs leader"]
    if (board["method"] == board["reference"]).any():
        header.append(f"Δ vs {board['reference'].iloc[0]}")
    return header


def significance_cells(board: pd.DataFrame, row: pd.Series) -> list[str]:
    """Markdown cells (percentage points) for `significance_header`: ``"+1.2 [-0.3, +2.7]"``, ``"leader"`` /
    ``"—"`` against itself, ``"(n=k)"`` when only k of the row's seeds pair up."""
    seeds = int(row["seeds"])
    cells = ["leader" if row["method"] == row["leader"] else _diff_cell(
        row["vs_leader_seen_mAP"], row["vs_leader_seen_mAP_low"], row["vs_leader_seen_mAP_high"],
        row["vs_leader_pairs"], seeds)]
    if (board["method"] == board["reference"]).any():
        cells.append("—" if row["method"] == row["reference"] else _diff_cell(
            row["vs_reference_seen_mAP"], row["vs_reference_seen_mAP_low"], row["vs_reference_seen_mAP_high"],
            row["vs_reference_pairs"], seeds))
    return cells
