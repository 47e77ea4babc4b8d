"""Tidy long-form CSV of every ReID score: the single source the reports (`ckda_avalanche.reporting`) read.

One row per value, columns exactly `TIDY_COLUMNS`:

==============  =========================================================================================
run             run identifier (e.g. the run directory name)
method          method name (``ckda``, ``naive``, ``lwf``, ...)
seed            integer seed
train_exp       training sessions finished when the value was measured (0 before any training)
eval_dataset    dataset name; ``seen_avg`` for stream-level means / forgetting / BWT; ``-`` for run-level rows
protocol        evaluation protocol (``paper`` / ``full``)
trial           trial name; ``mean`` for the mean over trials; ``-`` for stream-level and run-level rows
metric          ``mAP``, ``Rank1``, ``Rank5``, ``Rank10``, ``mINP``, ``forgetting/mAP``, ``forgetting/Rank1``,
                ``bwt/mAP``, ``bwt/Rank1``, ``modality_gap/ratio``, ``modality_gap/centroid`` (per dataset,
                trial ``mean``; `evaluation.modality_gap`); run-level rows written by the runner: ``memory_bytes/<kind>`` (bytes
                kept between sessions after session ``train_exp``), ``train_time_s`` (seconds spent training
                session ``train_exp``, one row per session), ``precision/<name>`` (value 1.0: session
                ``train_exp`` ran in precision ``fp32``, ``bf16`` or ``fp16``; `PRECISION_METRIC_PREFIX`),
                ``train_steps`` (optimiser steps of session ``train_exp``), ``upper_bound`` (1.0: a reference
                upper bound, Joint), ``loss/<term>``, and ``grad_share/<point>/<term>``, ``grad_proj/<point>/<term>``,
                ``grad_norm/<point>/total`` (`plugins.grad_share`)
value           float; retrieval scores are fractions in [0, 1] (reports display percent)
==============  =========================================================================================

Writes are append-only and flushed after every callback, so a crash loses nothing already evaluated. A new logger
refuses a file that already holds rows (``mode="new"``, the default: a second run would mix its rows with another
run's); ``mode="overwrite"`` starts the file afresh. On resume the runner calls `truncate_after_train_exp` (atomic
rewrite) and starts a new `TidyCSVLogger` on the same file with ``mode="append"``, which checks the header and that
every existing row belongs to the same run (run, method, seed; rows of another protocol are that run re-scored by
``ckda eval``).
"""
from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd
from avalanche.logging import BaseLogger

from .metric_value import ReIDMetricValue

if TYPE_CHECKING:
    from avalanche.evaluation.metric_results import MetricValue

__all__ = [
    "DRAW_COLUMN", "LOGGER_MODES", "MEASURED_METRICS", "TIDY_COLUMNS", "TidyCSVLogger", "is_measured_metric",
    "tidy_rows_from_csv", "truncate_after_train_exp", "append_extra_rows",
]

MEASURED_METRICS: tuple[str, ...] = ("train_time_s", "peak_")
"""Metric names (or prefixes) of rows that measure the machine, not the computation: wall-clock seconds and peak
memory. Two runs of the same computation (a resumed and an uninterrupted one, two executors) may differ in them."""


def is_measured_metric(metric: str) -> bool:
    """True for a row that measures the machine (`MEASURED_METRICS`)."""
    return metric.startswith(MEASURED_METRICS)

TIDY_COLUMNS: tuple[str, ...] = (
    "run", "method", "seed", "train_exp", "eval_dataset", "protocol", "trial", "metric", "value",
)
"""Column names of the tidy CSV, in file order."""
DRAW_COLUMN = "draw"
"""Optional last column of a tidy CSV read by the reports: the synthetic generator draw (its seed) the run was
trained and scored on. The runner does not write it (the draw is recorded in the run's ``config.json``); a CSV
that pools runs of several draws by hand may carry it. Without it, the reports take the draw from the run's
``config.json`` or count the run as draw 0 (`reporting.tidy_data.load_tidy`)."""
PRECISION_METRIC_PREFIX = "precision/"
"""Metric prefix of the run-level rows that record a session's precision (``precision/bf16``, value 1.0)."""
LOGGER_MODES: tuple[str, ...] = ("new", "append", "overwrite")
"""What `TidyCSVLogger` does with a file that already holds rows: refuse, continue the same run, start afresh."""


def _format_row(row: Mapping[str, object], where: str) -> list[str]:
    missing = [c for c in TIDY_COLUMNS if c not in row]
    extra = [c for c in row if c not in TIDY_COLUMNS]
    if missing or extra:
        raise ValueError(f"{where}: tidy row must have exactly the columns {TIDY_COLUMNS}; "
                         f"missing {missing}, unexpected {extra}")
    try:
        seed, train_exp, value = int(row["seed"]), int(row["train_exp"]), float(row["value"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: seed and train_exp must be integers and value a number, got "
                         f"seed={row['seed']!r} train_exp={row['train_exp']!r} value={row['value']!r}") from exc
    if train_exp < 0:
        raise ValueError(f"{where}: train_exp must be >= 0, got {train_exp}")
    if math.isinf(value):
        raise ValueError(f"{where}: value must be finite or NaN, got {value}")
    text = {c: str(row[c]) for c in ("run", "method", "eval_dataset", "protocol", "trial", "metric")}
    empty = [c for c, v in text.items() if not v]
    if empty:
        raise ValueError(f"{where}: empty text in column(s) {empty}")
    return [text["run"], text["method"], str(seed), str(train_exp), text["eval_dataset"], text["protocol"],
            text["trial"], text["metric"], repr(value)]


def _check_header(path: Path, *, allow_draw: bool = False) -> bool:
    """Raise unless ``path`` starts with the tidy header (plus `DRAW_COLUMN` when ``allow_draw``); returns
    whether the draw column is there."""
    with path.open(newline="") as handle:
        header = next(csv.reader(handle), None)
    if header is None:
        raise ValueError(f"{path}: empty file, expected the tidy CSV header {','.join(TIDY_COLUMNS)}")
    if allow_draw and tuple(header) == (*TIDY_COLUMNS, DRAW_COLUMN):
        return True
    if tuple(header) != TIDY_COLUMNS:
        raise ValueError(f"{path}: header {header} is not the tidy CSV header {list(TIDY_COLUMNS)}"
                         + (f" (optionally followed by {DRAW_COLUMN!r})" if allow_draw else ""))
    return False


def _append(path: Path, rows: Sequence[list[str]]) -> None:
    """Append complete lines with one write and fsync; on any failure (a full disk) the file is cut back to its
    previous size, so it never ends in a half line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        _check_header(path)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if new:
        writer.writerow(TIDY_COLUMNS)
    writer.writerows(rows)
    data = buffer.getvalue().encode("utf-8")
    with path.open("ab") as handle:
        size = handle.tell()
        try:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        except BaseException as exc:
            with contextlib.suppress(OSError):
                handle.truncate(size)
            if isinstance(exc, OSError) and exc.filename is None:
                exc.filename = str(path)  # messages name the CSV
            raise


class TidyCSVLogger(BaseLogger):
    """Avalanche logger writing every `ReIDMetricValue` as a tidy row (other metric values are not its business).

    Works side by side with ``InteractiveLogger`` / ``TensorBoardLogger``. Creates ``path`` with its header. A file
    that already holds rows is refused with ``mode="new"`` (default), started afresh with ``mode="overwrite"``, and
    continued with ``mode="append"`` (resume: every existing row must belong to this run, i.e. the same run, method
    and seed; rows of another protocol are the run re-scored by ``ckda eval``). Values of periodic evaluations
    inside ``train()`` are plain `MetricValue`s (see `evaluation.metrics`) and are therefore not written.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, run: str, method: str, seed: int,
        dataset_names: Sequence[str] | None = None, protocol: str,
        mode: Literal["new", "append", "overwrite"] = "new",
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.run, self.method, self.seed, self.protocol = str(run), str(method), int(seed), str(protocol)
        for field, value in (("run", self.run), ("method", self.method), ("protocol", self.protocol)):
            if not value:
                raise ValueError(f"TidyCSVLogger: {field} must be a non-empty string")
        self.dataset_names = None if dataset_names is None else tuple(str(d) for d in dataset_names)
        if mode not in LOGGER_MODES:
            raise ValueError(f"TidyCSVLogger: mode must be one of {LOGGER_MODES}, got {mode!r}")
        if mode == "overwrite" and self.path.exists():
            self.path.unlink()
        if self.path.exists() and self.path.stat().st_size > 0:
            _check_header(self.path)
            self._check_existing_rows(mode)
        else:
            _append(self.path, [])
        self.rows_written = 0
        """Rows written by this logger instance."""

    def _check_existing_rows(self, mode: str) -> None:
        existing = tidy_rows_from_csv(self.path)
        if existing.empty:
            return
        if mode == "new":
            first = existing.iloc[0]
            raise ValueError(
                f"{self.path} already holds {len(existing)} rows (run {first['run']!r}, method {first['method']!r}, "
                f"seed {first['seed']}); a new run would mix its scores with them: write to another file, delete "
                f"this one, or pass mode='overwrite' to start it afresh (mode='append' continues that same run)")
        # rows of other protocols are the same run re-scored by `ckda eval`: they live beside the training rows
        mine = (existing["run"] == self.run) & (existing["method"] == self.method) & (existing["seed"] == self.seed)
        if not mine.all():
            other = existing[~mine].iloc[0]
            raise ValueError(
                f"{self.path} holds rows of another run (run {other['run']!r}, method {other['method']!r}, seed "
                f"{other['seed']}, protocol {other['protocol']!r}); this logger records run {self.run!r}, method "
                f"{self.method!r}, seed {self.seed}, protocol {self.protocol!r} and only appends to its own run")

    def _row(self, mval: ReIDMetricValue) -> list[str]:
        allowed = ("seen_avg",) if self.dataset_names is None else ("seen_avg", *self.dataset_names)
        if self.dataset_names is not None and mval.eval_dataset not in allowed:
            raise ValueError(f"{self.path}: metric {mval.name!r} is for dataset {mval.eval_dataset!r}, which is "
                             f"not one of this run's datasets {self.dataset_names}")
        if mval.protocol != self.protocol:
            raise ValueError(f"{self.path}: metric {mval.name!r} was computed with protocol {mval.protocol!r} "
                             f"but this logger records protocol {self.protocol!r}")
        return _format_row({
            "run": self.run, "method": self.method, "seed": self.seed, "train_exp": mval.train_exp,
            "eval_dataset": mval.eval_dataset, "protocol": mval.protocol, "trial": mval.trial,
            "metric": mval.metric, "value": float(mval.value),
        }, str(self.path))

    def log_metrics(self, metric_values: list["MetricValue"]) -> None:
        rows = [self._row(m) for m in metric_values if isinstance(m, ReIDMetricValue)]
        if rows:
            _append(self.path, rows)
            self.rows_written += len(rows)


def tidy_rows_from_csv(path: str | os.PathLike[str], *, allow_draw: bool = False) -> pd.DataFrame:
    """Read a tidy CSV (header checked) into a DataFrame with typed columns (seed/train_exp int, value float).
    With ``allow_draw``, a trailing `DRAW_COLUMN` (integer) is accepted and returned."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tidy CSV not found: {path}")
    has_draw = _check_header(path, allow_draw=allow_draw)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in ("seed", "train_exp", *((DRAW_COLUMN,) if has_draw else ())):
        parsed = pd.to_numeric(frame[column], errors="coerce")
        bad = frame.index[parsed.isna() | (parsed != parsed.round())]
        if len(bad):
            raise ValueError(f"{path}, line {int(bad[0]) + 2}: column {column} must be an integer, "
                             f"got {frame[column].iloc[bad[0]]!r}")
        frame[column] = parsed.astype("int64")
    values = pd.to_numeric(frame["value"], errors="coerce")
    bad = frame.index[values.isna() & (frame["value"].str.lower() != "nan")]
    if len(bad):
        raise ValueError(f"{path}, line {int(bad[0]) + 2}: column value must be a number, "
                         f"got {frame['value'].iloc[bad[0]]!r}")
    frame["value"] = values.astype("float64")
    return frame[[*TIDY_COLUMNS, *((DRAW_COLUMN,) if has_draw else ())]]


def rewrite_csv_rows(path: str | os.PathLike[str], header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Atomically replace the CSV ``path`` by ``header`` and ``rows`` (temporary file, fsync, rename)."""
    path = Path(path)
    handle_fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle_fd, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def truncate_after_train_exp(path: str | os.PathLike[str], train_exp: int) -> int:
    """Atomically rewrite ``path`` keeping only rows with ``train_exp <=`` the given value; returns rows dropped."""
    path = Path(path)
    frame = tidy_rows_from_csv(path)  # validates the whole file first
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    column = TIDY_COLUMNS.index("train_exp")
    kept = [r for r in rows if int(r[column]) <= int(train_exp)]
    rewrite_csv_rows(path, header, kept)
    return len(frame) - len(kept)


def append_extra_rows(path: str | os.PathLike[str], rows: Iterable[Mapping[str, object]]) -> int:
    """Append run-level rows (each a mapping with exactly `TIDY_COLUMNS`); creates the file if needed.

    Returns the number of rows written. Convention: ``eval_dataset`` and ``trial`` are ``"-"``, metric names
    ``memory_bytes/<kind>`` and ``train_time_s`` (see the module docstring).
    """
    path = Path(path)
    formatted = [_format_row(row, f"{path}: extra row {i}") for i, row in enumerate(rows)]
    _append(path, formatted)
    return len(formatted)
