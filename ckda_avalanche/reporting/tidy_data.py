"""Reading tidy CSVs for the reports: source resolution, validation, and per-run score matrices.

Reports read only the tidy CSV written by `ckda_avalanche.evaluation.tidy_logger` (columns `TIDY_COLUMNS`).
A *run* is one (method, protocol, run, seed) combination; a method's seeds are its runs.

Dataset order (needed to know when each dataset was learned): the order in which datasets first appear in the
run's rows, which is the test-stream order because the logger writes experiences as they are evaluated. Dataset
``d`` (0-based) is learned in session ``d + 1``, as in the VI-LReID benchmark (one experience per dataset).
"""
from __future__ import annotations

import csv
import json
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ckda_avalanche.evaluation.tidy_logger import DRAW_COLUMN, TIDY_COLUMNS, tidy_rows_from_csv

from .precision import run_precisions
from .comparability import screen_comparable
from .run_checks import NoRunFoundError, NoRunToReportError, RunLeftOutWarning, screen_runs

__all__ = ["RUN_KEYS", "SPECIAL_DATASETS", "RunScores", "load_tidy", "run_config_records", "run_scores"]

RUN_CSV = "metrics.csv"
"""File name of a run's tidy CSV (`runner.session_runner`): read below a folder even when damaged, to say why."""

RUN_KEYS: tuple[str, ...] = ("method", "protocol", "run", "seed")
"""Columns identifying one run."""
SPECIAL_DATASETS: tuple[str, ...] = ("seen_avg", "-")
"""``eval_dataset`` values that are not datasets (stream means, run-level rows)."""

Sources = pd.DataFrame | str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def _header(path: Path) -> tuple[str, ...]:
    try:
        with path.open(newline="") as handle:
            return tuple(next(csv.reader(handle), ()))
    except (OSError, UnicodeDecodeError, csv.Error):
        return ()


def _csv_paths(source: str | os.PathLike[str]) -> list[Path]:
    """The tidy CSVs of a source: a file itself, or below a folder every ``*.csv`` with the tidy header and every
    ``metrics.csv`` (a run's CSV, whatever its state: `_read_run_csv` names what is wrong with it)."""
    path = Path(source)
    if path.is_dir():
        headers = (TIDY_COLUMNS, (*TIDY_COLUMNS, DRAW_COLUMN))
        found = sorted(p for p in path.rglob("*.csv")
                       if p.is_file() and (p.name == RUN_CSV or _header(p) in headers))
        if not found:
            raise NoRunFoundError(f"{path}: no run here (no metrics.csv and no tidy CSV with header "
                                  f"{','.join(TIDY_COLUMNS)} below this folder)")
        return found
    if not path.is_file():
        raise NoRunFoundError(f"{path}: run folder or tidy CSV not found")
    return [path]


def _damage(path: Path) -> str | None:
    """What makes ``path`` unreadable as a tidy CSV, line by line (None when every line is well formed)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not data:
        return "empty file (0 bytes: the run wrote nothing yet, or its writer was interrupted)"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (byte {exc.start})"
    lines = text.splitlines()
    header = tuple(next(csv.reader([lines[0]]), ()))
    if header not in (TIDY_COLUMNS, (*TIDY_COLUMNS, DRAW_COLUMN)):
        return f"line 1 is not the tidy CSV header {','.join(TIDY_COLUMNS)} (optionally followed by ,{DRAW_COLUMN})"
    if len([line for line in lines[1:] if line.strip()]) == 0:
        return "header only, no scores yet (a run still in its first session? finish it with --resume)"
    if not text.endswith("\n"):
        return (f"line {len(lines)} is incomplete (no line end: its writer was interrupted); rerun the run with "
                f"--resume to rebuild the CSV from its checkpoint")
    for number, fields in enumerate(csv.reader(lines[1:]), start=2):
        if tuple(fields) == header:
            return f"line {number} repeats the header (two CSVs joined into one?)"
        if fields and len(fields) != len(header):
            return f"line {number} has {len(fields)} fields, expected {len(header)}"
    return None


def _read_run_csv(path: Path) -> pd.DataFrame | None:
    """The rows of one tidy CSV; None, with a `RunLeftOutWarning` naming the file and the reason, when damaged."""
    problem = _damage(path)
    if problem is None:
        try:
            frame = tidy_rows_from_csv(path, allow_draw=True)
            return frame if DRAW_COLUMN in frame.columns else frame.assign(**{DRAW_COLUMN: run_draw(path)})
        except (ValueError, OSError, csv.Error) as exc:
            problem = str(exc).replace(f"{path}, ", "").replace(f"{path}: ", "")
    warnings.warn(f"{path} left out: {problem}", RunLeftOutWarning, stacklevel=3)
    return None


def run_draw(csv_path: str | os.PathLike[str]) -> int:
    """The synthetic draw of the run whose tidy CSV is ``csv_path``: ``run_config.synthetic_seed`` of the
    ``config.json`` next to it (what ``ckda run`` writes in every run folder), 0 when there is none."""
    config = Path(csv_path).with_name("config.json")
    if not config.is_file():
        return 0
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        return int((data.get("run_config") or {}).get("synthetic_seed") or 0)
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"{config}: expected JSON with run_config.synthetic_seed (an integer): {exc}") from exc


def run_config_records(sources: Iterable[str]) -> dict[str, dict | None]:
    """CSV path -> the ``config.json`` next to it (None when absent or unreadable)."""
    records: dict[str, dict | None] = {}
    for source in sources:
        config = Path(source).parent / "config.json"
        try:
            records[source] = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            records[source] = None
    return records


def load_tidy(sources: Sources, *, complete_only: bool = True) -> pd.DataFrame:
    """One DataFrame from a DataFrame, a tidy CSV path, a run directory (every tidy ``*.csv`` and ``metrics.csv``
    below it), or a list of those paths. Raises ValueError on missing columns. A damaged CSV (empty, header only,
    a line cut short, repeated header, a wrong field count, a bad value) is left out with a
    `run_checks.RunLeftOutWarning` naming the file and why; so are runs that are duplicated (in two files, or a
    measurement recorded twice), not comparable with the rest (`comparability.screen_comparable`) or, with
    ``complete_only``, unfinished or with missing scores (`run_checks.screen_runs`).

    Every row gets a ``draw`` column (the synthetic generator draw; draw x seed are the replicates): the CSV's own
    ``draw`` column when it has one, else the run folder's ``config.json`` (`run_draw`), else 0."""
    records: dict[str, dict | None] = {}
    if isinstance(sources, pd.DataFrame):
        frame = sources.copy()
    else:
        items: Iterable[str | os.PathLike[str]] = (
            [sources] if isinstance(sources, (str, os.PathLike)) else sources)
        found = [p for item in items for p in _csv_paths(item)]
        paths = [p for i, p in enumerate(found)  # a folder or file named twice counts once
                 if p.resolve() not in {q.resolve() for q in found[:i]}]
        if not paths:
            raise ValueError("no tidy CSV given")
        frames = [f.assign(_source=str(p)) for p in paths if (f := _read_run_csv(p)) is not None]
        if not frames:
            raise NoRunToReportError(f"no run left to report: all {len(paths)} CSV file(s) were left out "
                                     "(see the warnings)")
        frame = pd.concat(frames, ignore_index=True)
        records = run_config_records(str(p) for p in paths)
    missing = [c for c in TIDY_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"tidy data lacks columns {missing}; expected {list(TIDY_COLUMNS)}")
    if DRAW_COLUMN not in frame.columns:
        frame[DRAW_COLUMN] = 0
    draws = pd.to_numeric(frame[DRAW_COLUMN], errors="coerce")
    if draws.isna().any() or (draws != draws.round()).any() or (draws < 0).any():
        bad = frame[DRAW_COLUMN][draws.isna() | (draws != draws.round()) | (draws < 0)].iloc[0]
        raise ValueError(f"tidy data: column {DRAW_COLUMN} must hold integers >= 0, got {bad!r}")
    frame[DRAW_COLUMN] = draws.astype("int64")
    frame = frame[[*TIDY_COLUMNS, DRAW_COLUMN] + (["_source"] if "_source" in frame.columns else [])
                  ].reset_index(drop=True)
    if frame.empty:
        raise ValueError("tidy data is empty")
    frame = screen_comparable(frame, records)
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
    draw: int = 0
    """Synthetic generator draw of the run (`load_tidy`); draw x seed identify a replicate."""
    precision: str = "unknown"
    """Precision the run's sessions ran in (`precision.run_precisions`): ``fp32``, ``bf16``, ``fp16``, several
    joined by ``+`` when sessions differ, ``unknown`` when the CSV records none."""


def run_scores(frame: pd.DataFrame) -> list[RunScores]:
    """Split tidy rows into runs (`RUN_KEYS`) and build each run's score matrices."""
    out: list[RunScores] = []
    precisions = run_precisions(frame)
    if DRAW_COLUMN not in frame.columns:
        frame = frame.assign(**{DRAW_COLUMN: 0})
    for keys, rows in frame.groupby([*RUN_KEYS, DRAW_COLUMN], sort=True):
        method, protocol, run, seed, draw = keys
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
                             memory_bytes=memory_bytes, train_time_s=train_time, draw=int(draw),
                             train_steps={int(k): float(v) for k, v in zip(steps["train_exp"], steps["value"])},
                             upper_bound=bool((run_level["metric"] == "upper_bound").any()),
                             precision=precisions.get((str(method), str(run), int(seed)), "unknown")))
    return out
