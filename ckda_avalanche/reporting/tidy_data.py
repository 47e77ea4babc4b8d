"""Reading tidy CSVs for the reports: source resolution, validation, and per-run score matrices.

Reports read only the tidy CSV written by `ckda_avalanche.evaluation.tidy_logger` (columns `TIDY_COLUMNS`).
A *run* is one (method, protocol, run, seed) combination; a method's seeds are its runs.

Dataset order (needed to know when each dataset was learned): the order in which datasets first appear in the
run's rows, which is the test-stream order because the logger writes experiences as they are evaluated. Dataset
``d`` (0-based) is learned in session ``d + 1``, as in the VI-LReID benchmark (one experience per dataset).
"""
from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ckda_avalanche.evaluation.tidy_logger import TIDY_COLUMNS, tidy_rows_from_csv

from .precision import run_precisions
from .run_checks import screen_runs

__all__ = ["RUN_KEYS", "SPECIAL_DATASETS", "RunScores", "load_tidy", "run_scores"]

RUN_KEYS: tuple[str, ...] = ("method", "protocol", "run", "seed")
"""Columns identifying one run."""
SPECIAL_DATASETS: tuple[str, ...] = ("seen_avg", "-")
"""``eval_dataset`` values that are not datasets (stream means, run-level rows)."""

Sources = pd.DataFrame | str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def _is_tidy_csv(path: Path) -> bool:
    with path.open(newline="") as handle:
        return tuple(next(csv.reader(handle), ())) == TIDY_COLUMNS


def _csv_paths(source: str | os.PathLike[str]) -> list[Path]:
    path = Path(source)
    if path.is_dir():
        found = sorted(p for p in path.rglob("*.csv") if _is_tidy_csv(p))
        if not found:
            raise FileNotFoundError(f"no tidy CSV (header {','.join(TIDY_COLUMNS)}) under run directory {path}")
        return found
    if not path.is_file():
        raise FileNotFoundError(f"tidy CSV or run directory not found: {path}")
    return [path]


def load_tidy(sources: Sources, *, complete_only: bool = True) -> pd.DataFrame:
    """One DataFrame from a DataFrame, a tidy CSV path, a run directory (every tidy ``*.csv`` below it), or a list
    of those paths. Raises ValueError on missing columns. Runs that are duplicated (in two files, or a measurement
    recorded twice) or, with ``complete_only``, unfinished or with missing scores are left out with a
    `run_checks.RunLeftOutWarning` each (`run_checks.screen_runs`)."""
    if isinstance(sources, pd.DataFrame):
        frame = sources.copy()
    else:
        items: Iterable[str | os.PathLike[str]] = (
            [sources] if isinstance(sources, (str, os.PathLike)) else sources)
        paths = [p for item in items for p in _csv_paths(item)]
        if not paths:
            raise ValueError("no tidy CSV given")
        frame = pd.concat([tidy_rows_from_csv(p).assign(_source=str(p)) for p in paths], ignore_index=True)
    missing = [c for c in TIDY_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"tidy data lacks columns {missing}; expected {list(TIDY_COLUMNS)}")
    frame = frame[list(TIDY_COLUMNS) + (["_source"] if "_source" in frame.columns else [])].reset_index(drop=True)
    if frame.empty:
        raise ValueError("tidy data is empty")
    return screen_runs(frame, complete_only=complete_only)


@dataclass(frozen=True)
class RunScores:
    """Scores of one run arranged as session x dataset matrices (fractions, NaN where not evaluated)."""

    method: str
    """Method name."""
    protocol: str
    """Protocol name."""
    run: str
    """Run identifier."""
    seed: int
    """Seed."""
    datasets: tuple[str, ...]
    """Datasets in stream order (column order of the matrices)."""
    final_train_exp: int
    """Last training-session count at which datasets were evaluated."""
    matrices: dict[str, np.ndarray]
    """Metric -> ``R[train_exp, dataset]`` over rows 0..final_train_exp (trial-mean values)."""
    memory_bytes: dict[int, float]
    """train_exp -> total bytes kept between sessions (sum over ``memory_bytes/<kind>`` rows)."""
    train_time_s: dict[int, float]
    """train_exp -> seconds spent training that session."""
    train_steps: dict[int, float] = field(default_factory=dict)
    """train_exp -> optimiser steps of that session (``train_steps`` rows; empty for CSVs written before them)."""
    upper_bound: bool = False
    """The run is a reference upper bound (an ``upper_bound`` row: Joint), not held to the shared budget."""
    precision: str = "unknown"
    """Precision the run's sessions ran in (`precision.run_precisions`): ``fp32``, ``bf16``, ``fp16``, several
    joined by ``+`` when sessions differ, ``unknown`` when the CSV records none."""


def run_scores(frame: pd.DataFrame) -> list[RunScores]:
    """Split tidy rows into runs (`RUN_KEYS`) and build each run's score matrices."""
    out: list[RunScores] = []
    precisions = run_precisions(frame)
    for keys, rows in frame.groupby(list(RUN_KEYS), sort=True):
        method, protocol, run, seed = keys
        per_dataset = rows[~rows["eval_dataset"].isin(SPECIAL_DATASETS) & (rows["trial"] == "mean")]
        if per_dataset.empty:
            raise ValueError(f"run {run!r} (method {method!r}, seed {seed}) has no per-dataset trial-mean scores")
        datasets = tuple(pd.unique(per_dataset["eval_dataset"]))
        final = int(per_dataset["train_exp"].max())
        matrices: dict[str, np.ndarray] = {}
        for metric, metric_rows in per_dataset.groupby("metric", sort=False):
            matrix = np.full((final + 1, len(datasets)), np.nan)
            cols = metric_rows["eval_dataset"].map({d: i for i, d in enumerate(datasets)}).to_numpy()
            matrix[metric_rows["train_exp"].to_numpy(), cols] = metric_rows["value"].to_numpy()
            matrices[str(metric)] = matrix
        run_level = rows[rows["eval_dataset"] == "-"]
        memory = run_level[run_level["metric"].str.startswith("memory_bytes/")]
        memory_bytes = {int(k): float(v) for k, v in memory.groupby("train_exp")["value"].sum().items()}
        times = run_level[run_level["metric"] == "train_time_s"]
        train_time = {int(k): float(v) for k, v in zip(times["train_exp"], times["value"])}
        steps = run_level[run_level["metric"] == "train_steps"]
        out.append(RunScores(method=str(method), protocol=str(protocol), run=str(run), seed=int(seed),
                             datasets=datasets, final_train_exp=final, matrices=matrices,
                             memory_bytes=memory_bytes, train_time_s=train_time,
                             train_steps={int(k): float(v) for k, v in zip(steps["train_exp"], steps["value"])},
                             upper_bound=bool((run_level["metric"] == "upper_bound").any()),
                             precision=precisions.get((str(method), str(run), int(seed)), "unknown")))
    return out
