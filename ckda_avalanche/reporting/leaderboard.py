"""Leaderboard of methods from tidy CSVs: final seen-average mAP / Rank-1, per-dataset scores, forgetting, BWT,
memory and training time, mean ± std over seeds.

Per run (one seed), at its last session ``S`` (see ``docs/protocol.md``, "Session reporting"):

- ``seen_mAP`` / ``seen_Rank1``: `evaluation.forgetting.seen_average` of the per-dataset trial means at ``S``;
- ``<dataset>/mAP`` / ``<dataset>/Rank1``: the dataset's score at ``S``;
- ``forgetting_mAP`` / ``forgetting_Rank1``: `average_forgetting` at ``S`` (datasets learned before session S);
- ``bwt_mAP`` / ``bwt_Rank1``: `backward_transfer` at ``S``;
- ``memory_bytes``: the largest total of ``memory_bytes/<kind>`` rows over sessions (memory kept between
  sessions); ``train_time_s``: the sum of the ``train_time_s`` rows (one per session); ``train_steps``: the sum
  of the ``train_steps`` rows (optimiser steps, the training budget); ``upper_bound``: 1 for a reference upper
  bound (Joint: an ``upper_bound`` row), whose method cell reads "joint (upper bound)".
- ``peak_rss_bytes`` / ``peak_gpu_reserved_bytes``: the largest measured peak over sessions (what a session needs
  while it runs, not what is kept; `runner.peak_memory`), NaN where the CSV has none (the GPU one: CUDA only).

Across the seeds of a method: mean, sample standard deviation (ddof=1; NaN with one seed) and the half-width of
the 95% Student-t confidence interval of the mean (`stats.mean_interval`; NaN with one seed). All seeds of a method
must have finished the same number of sessions and, unless ``merge_precisions``, run in the same precision
(`precision.pooled_precision`). Scores are fractions in the DataFrame / CSV and percent (one decimal) in the
markdown table; forgetting and BWT are shown in percentage points.

Significance (per protocol; `significance.add_significance`): rows are sorted by mean ``seen_mAP``; the first is
the *leader*. Every row gets the paired difference of its final ``seen_mAP`` to the leader's and to the reference
method's (fine-tuning by default), paired by seed, with its 95% interval. A row *ties with the leader* when that
interval contains 0; tied rows share rank 1, the others are ranked by position.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ckda_avalanche.evaluation.forgetting import average_forgetting, backward_transfer, seen_average

from .draws import draw_agreement, draw_agreement_markdown
from .precision import pooled_precision
from .significance import DEFAULT_REFERENCE, add_significance, significance_cells, significance_header
from .stats import mean_interval
from .tidy_data import RunScores, Sources, load_tidy, run_scores

__all__ = ["HEADLINE_METRICS", "PEAK_COLUMNS", "RUN_COLUMNS", "per_run_table", "aggregate_runs",
           "build_leaderboard", "leaderboard_markdown", "write_leaderboard"]

RUN_COLUMNS: tuple[str, ...] = ("method", "protocol", "run", "seed", "sessions", "precision", "draw")
"""Columns of `per_run_table` that describe a run (the others are its values)."""

HEADLINE_METRICS: tuple[str, ...] = ("mAP", "Rank1")
"""Metrics reported on the leaderboard."""


def _final_values(run: RunScores) -> dict[str, float]:
    values: dict[str, float] = {}
    final = run.final_train_exp
    where = f"run {run.run!r} (method {run.method!r}, seed {run.seed})"
    for metric in HEADLINE_METRICS:
        if metric not in run.matrices:
            raise ValueError(f"{where}: no per-dataset {metric} rows")
        matrix = run.matrices[metric]
        try:
            values[f"seen_{metric}"] = seen_average(matrix, after=final)
            values[f"forgetting_{metric}"] = average_forgetting(matrix, after=final)
            values[f"bwt_{metric}"] = backward_transfer(matrix, after=final)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
        for d, dataset in enumerate(run.datasets):
            values[f"{dataset}/{metric}"] = float(matrix[final, d])
    values["memory_bytes"] = max(run.memory_bytes.values()) if run.memory_bytes else float("nan")
    values["train_time_s"] = sum(run.train_time_s.values()) if run.train_time_s else float("nan")
    values["train_steps"] = sum(run.train_steps.values()) if run.train_steps else float("nan")
    values["upper_bound"] = float(run.upper_bound)
    return values


PEAK_COLUMNS: tuple[str, ...] = ("peak_rss_bytes", "peak_gpu_reserved_bytes")
"""Measured peaks shown on the leaderboard (largest over a run's sessions; `runner.peak_memory` writes the rows)."""


def _peak_values(frame: pd.DataFrame) -> dict[tuple[str, str, str, int], dict[str, float]]:
    """(method, protocol, run, seed) -> the largest value over sessions of each `PEAK_COLUMNS` metric."""
    rows = frame[frame["metric"].isin(PEAK_COLUMNS)]
    if rows.empty:
        return {}
    peaks = rows.groupby(["method", "protocol", "run", "seed", "metric"])["value"].max()
    out: dict[tuple[str, str, str, int], dict[str, float]] = {}
    for (method, protocol, run, seed, metric), value in peaks.items():
        out.setdefault((str(method), str(protocol), str(run), int(seed)), {})[str(metric)] = float(value)
    return out


def per_run_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run (`RUN_COLUMNS`) with the final values of `_final_values` and the measured peaks
    (`PEAK_COLUMNS`, NaN where not measured)."""
    frame = load_tidy(df)
    peaks = _peak_values(frame)
    records = []
    for run in run_scores(frame):
        measured = peaks.get((run.method, run.protocol, run.run, run.seed), {})
        records.append({"method": run.method, "protocol": run.protocol, "run": run.run, "seed": run.seed,
                        "sessions": run.final_train_exp, "precision": run.precision, "draw": run.draw,
                        **_final_values(run), **{c: measured.get(c, float("nan")) for c in PEAK_COLUMNS}})
    return pd.DataFrame.from_records(records)


def aggregate_runs(runs: pd.DataFrame, *, merge_precisions: bool = False) -> pd.DataFrame:
    """One row per (method, protocol) of `per_run_table` output: ``method``, ``protocol``, ``precision``,
    ``seeds``, ``draws`` (how many synthetic draws), ``draw_ids`` (which, space-separated), ``sessions`` and
    ``<value>_mean`` / ``<value>_std`` / ``<value>_ci95`` (half-width of the 95% interval) for every value column,
    in (method, protocol) order. Raises ValueError when seeds of a row finished different numbers of sessions or
    repeat, `MixedPrecisionError` when they differ in precision (unless ``merge_precisions``)."""
    value_columns = [c for c in runs.columns if c not in RUN_COLUMNS]
    rows = []
    for (method, protocol), group in runs.groupby(["method", "protocol"], sort=True):
        sessions = sorted(group["sessions"].unique())
        if len(sessions) != 1:
            detail = ", ".join(f"seed {s}: {n}" for s, n in zip(group["seed"], group["sessions"]))
            raise ValueError(f"method {method!r} ({protocol}): seeds finished different numbers of sessions "
                             f"({detail}); finish or remove the incomplete runs")
        draws = group["draw"].tolist() if "draw" in group.columns else [0] * len(group)
        replicates = list(zip(draws, group["seed"].tolist()))
        if len(set(replicates)) != len(replicates):
            raise ValueError(f"method {method!r} ({protocol}): seed(s) appear in several runs of one draw: "
                             f"{sorted(group['run'])}")
        precision = pooled_precision(
            f"method {method!r} ({protocol})",
            {f"seed {seed} ({run})": label for seed, run, label in zip(group["seed"], group["run"],
                                                                       group["precision"])},
            merge=merge_precisions)
        row: dict[str, object] = {"method": method, "protocol": protocol, "precision": precision,
                                  "seeds": len(group), "draws": len(set(draws)),
                                  "draw_ids": " ".join(str(d) for d in sorted(set(draws))),
                                  "sessions": int(sessions[0])}
        for column in value_columns:
            values = group[column].to_numpy(dtype=np.float64)
            row[f"{column}_mean"] = float(np.mean(values)) if not np.isnan(values).all() else float("nan")
            row[f"{column}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
            row[f"{column}_ci95"] = mean_interval(values).half_width
        rows.append(row)
    return pd.DataFrame.from_records(rows)


def build_leaderboard(df: pd.DataFrame, *, merge_precisions: bool = False,
                      reference: str = DEFAULT_REFERENCE) -> pd.DataFrame:
    """Leaderboard: one row per (method, protocol) with the columns of `aggregate_runs`, the significance columns
    of `significance.add_significance` (paired differences to the leader and to ``reference``, ``rank``,
    ``tied_with_leader``); protocols in order (``paper`` first), rows by ``seen_mAP_mean`` (best first). Values
    are fractions."""
    runs = per_run_table(df)
    return add_significance(aggregate_runs(runs, merge_precisions=merge_precisions), runs, reference=reference)


def _pct(mean: float, std: float, *, signed: bool = False) -> str:
    if math.isnan(mean):
        return "–"
    text = f"{100 * mean:+.1f}" if signed else f"{100 * mean:.1f}"
    return text if math.isnan(std) else f"{text} ± {100 * std:.1f}"


def _pct_ci(mean: float, std: float, half: float) -> str:
    text = _pct(mean, std)
    return text if math.isnan(half) else f"{text} [{100 * (mean - half):.1f}, {100 * (mean + half):.1f}]"


def _plain(mean: float, std: float, scale: float, digits: int) -> str:
    if math.isnan(mean):
        return "–"
    text = f"{mean / scale:.{digits}f}"
    return text if math.isnan(std) else f"{text} ± {std / scale:.{digits}f}"


def _duration(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "–"
    scale, unit = (3600.0, "h") if mean >= 3600 else (60.0, "min") if mean >= 60 else (1.0, "s")
    text = f"{mean / scale:.1f} {unit}"
    return text if math.isnan(std) else f"{mean / scale:.1f} ± {std / scale:.1f} {unit}"


def _uneven_draws_note(board: pd.DataFrame) -> str:
    """A warning line per protocol whose methods were not all run on the same synthetic draws: their means are
    then over different draws and only the paired differences (common replicates) compare them."""
    lines = []
    for protocol, rows in board.groupby("protocol", sort=False):
        coverage = dict(zip(rows["method"].astype(str), rows["draw_ids"].astype(str)))
        if len(set(coverage.values())) > 1:
            listed = "; ".join(f"{m}: {d}" for m, d in coverage.items())
            lines.append(f"\n**Uneven draws ({protocol})**: the methods were run on different draws ({listed}); "
                         "their means are over different draws, so compare them by the paired differences, "
                         "which use only the replicates both have.\n")
    return "".join(lines)


def leaderboard_markdown(board: pd.DataFrame) -> str:
    """Markdown table of `build_leaderboard` output (percent with one decimal; forgetting/BWT in points; the seen
    mAP with its 95% interval, and the paired differences to the leader and the reference)."""
    datasets = [c[: -len("/mAP_mean")] for c in board.columns if c.endswith("/mAP_mean")]
    header = (["#", "Method", "Precision", "Protocol", "Seeds", "Sessions", "Seen mAP [95% CI]",
               *significance_header(board), "Seen R1"]
              + [f"{d} mAP / R1" for d in datasets]
              + ["Forgetting mAP", "BWT mAP", "Forgetting R1", "BWT R1", "Memory (MiB)", "Train time", "Steps",
                 "Peak RSS (MiB)", "Peak GPU (MiB)"])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for _, r in board.iterrows():
        method = str(r["method"]) + (" (upper bound)" if r.get("upper_bound_mean", 0.0) > 0 else "")
        seeds = str(r["seeds"]) if int(r.get("draws", 1)) <= 1 else f"{r['seeds']} ({r['draws']} draws)"
        cells = [str(r["rank"]), method, str(r["precision"]), str(r["protocol"]), seeds,
                 str(r["sessions"]), _pct_ci(r["seen_mAP_mean"], r["seen_mAP_std"], r["seen_mAP_ci95"]),
                 *significance_cells(board, r), _pct(r["seen_Rank1_mean"], r["seen_Rank1_std"])]
        for d in datasets:
            cells.append(f"{_pct(r[f'{d}/mAP_mean'], r[f'{d}/mAP_std'])} / "
                         f"{_pct(r[f'{d}/Rank1_mean'], r[f'{d}/Rank1_std'])}")
        for column in ("forgetting_mAP", "bwt_mAP", "forgetting_Rank1", "bwt_Rank1"):
            cells.append(_pct(r[f"{column}_mean"], r[f"{column}_std"], signed=column.startswith("bwt")))
        cells.append(_plain(r["memory_bytes_mean"], r["memory_bytes_std"], 2**20, 1))
        cells.append(_duration(r["train_time_s_mean"], r["train_time_s_std"]))
        cells.append(_plain(r["train_steps_mean"], float("nan"), 1.0, 0))
        for column in PEAK_COLUMNS:
            cells.append(_plain(r[f"{column}_mean"], r[f"{column}_std"], 2**20, 0) if f"{column}_mean" in r else "–")
        lines.append("| " + " | ".join(cells) + " |")
    note = ("\nScores in percent (mean ± sample std over seeds; [95% confidence interval of the mean, Student t "
            "over seeds]). Seen = mean over the datasets learned so far, after the last session. Δ: paired "
            "difference of final seen mAP (same seeds; points) with its 95% interval; rows whose Δ to the leader "
            "has an interval containing 0 share rank 1. Forgetting: best earlier score minus final score, averaged "
            "over datasets learned before the last session (points; lower is better). BWT: final minus "
            "just-learned score (points; higher is better). Memory: bytes kept between sessions (largest over "
            "sessions). Precision: autocast dtype of training and evaluation. Steps: optimiser steps over all "
            "sessions (mean over seeds); an upper bound is not held to the other methods' budget. Peak RSS / "
            "Peak GPU: measured peak host memory of the process and GPU memory reserved by torch (CUDA only), "
            "largest over sessions.\n")
    if "draws" in board.columns and int(board["draws"].max()) > 1:
        note += ("\nSeeds: replicates pooled over synthetic draws (draw x seed); a paired difference pairs the same "
                 "seed of the same draw.\n")
    if "draw_ids" in board.columns:
        note += _uneven_draws_note(board)
    precisions = sorted(set(board["precision"].astype(str)))
    if len(precisions) > 1:
        note += (f"\nRows differ in precision ({', '.join(precisions)}): the same command scores differently in "
                 "bf16 and fp32, so compare across them with care.\n")
    return "\n".join(lines) + "\n" + note


def write_table_files(out_dir: str | os.PathLike[str], stem: str, table: pd.DataFrame,
                      markdown: str) -> tuple[Path, Path]:
    """Write ``<stem>.csv`` (the table) and ``<stem>.md`` (its markdown) into ``out_dir``; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / f"{stem}.csv", out / f"{stem}.md"
    table.to_csv(csv_path, index=False)
    md_path.write_text(markdown, encoding="utf-8")
    return csv_path, md_path


def write_leaderboard(sources: Sources, out_dir: str | os.PathLike[str], *, merge_precisions: bool = False,
                      reference: str = DEFAULT_REFERENCE) -> tuple[Path, Path]:
    """Build the leaderboard from run directories / tidy CSVs and write ``leaderboard.csv`` (fractions) and
    ``leaderboard.md`` into ``out_dir``; returns both paths. When the runs come from several synthetic draws, the
    markdown ends with the agreement of the method order between draws (`draws.draw_agreement`), also written
    as ``draw_agreement.csv``."""
    frame = load_tidy(sources)
    board = build_leaderboard(frame, merge_precisions=merge_precisions, reference=reference)
    markdown, agreement = leaderboard_markdown(board), None
    if int(board["draws"].max()) > 1:  # several synthetic draws pooled: how well the method order agrees
        agreement = draw_agreement(per_run_table(frame))
        markdown += "\n" + draw_agreement_markdown(agreement)
    paths = write_table_files(out_dir, "leaderboard", board, markdown)
    if agreement is not None:
        agreement.to_csv(Path(out_dir) / "draw_agreement.csv", index=False)
    return paths
