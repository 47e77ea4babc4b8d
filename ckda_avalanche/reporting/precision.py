"""Numerical precision of runs, as recorded in the tidy CSV, and the rule that keeps precisions apart.

The runner writes one run-level row ``metric = "precision/<name>"`` per session (`runner.env_info.precision_rows`;
``<name>`` is ``fp32``, ``bf16`` or ``fp16``, the autocast dtype the strategy used). A run's precision is the set
of names over its sessions and over every protocol it was scored under (a run re-scored later keeps the precision
it was trained in), joined by ``+`` when a resumed run changed machine, and ``unknown`` for CSVs written before the
precision was recorded.

The same command gives different metrics in bf16 and in float32, so the reports refuse to pool seeds of different
precision into one leaderboard (or ablation) row unless asked to (``merge=True``, ``ckda leaderboard
--merge-precisions``); the pooled row then shows every precision it holds.
"""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ckda_avalanche.evaluation.tidy_logger import PRECISION_METRIC_PREFIX

__all__ = ["UNKNOWN_PRECISION", "MixedPrecisionError", "run_precisions", "pooled_precision"]

UNKNOWN_PRECISION = "unknown"
"""Precision of a run whose CSV has no ``precision/<name>`` row."""


class MixedPrecisionError(ValueError):
    """Seeds of one leaderboard row ran in different precisions and merging was not asked for."""


def run_precisions(frame: pd.DataFrame) -> dict[tuple[str, str, int], str]:
    """(method, run, seed) -> precision name(s) joined by ``+`` (sorted), for every run with a precision row."""
    rows = frame[frame["metric"].astype(str).str.startswith(PRECISION_METRIC_PREFIX)]
    out: dict[tuple[str, str, int], str] = {}
    for (method, run, seed), group in rows.groupby(["method", "run", "seed"], sort=True):
        names = sorted({str(m)[len(PRECISION_METRIC_PREFIX):] for m in group["metric"]})
        out[(str(method), str(run), int(seed))] = "+".join(names)
    return out


def pooled_precision(where: str, per_run: Mapping[str, str], *, merge: bool) -> str:
    """Precision label of one report row pooling the runs ``per_run`` (run description -> precision).

    Raises `MixedPrecisionError` naming ``where`` and each run's precision when they differ and ``merge`` is
    False; with ``merge`` the label lists every precision present (sorted, ``+``-joined)."""
    names = sorted({part for label in per_run.values() for part in label.split("+")})
    if len(set(per_run.values())) <= 1:
        return next(iter(per_run.values()), UNKNOWN_PRECISION)
    if not merge:
        detail = ", ".join(f"{run}: {label}" for run, label in per_run.items())
        raise MixedPrecisionError(
            f"{where}: runs of different precision ({detail}) would be pooled into one row; scores differ between "
            f"bf16 and fp32, so report them separately (one leaderboard per precision), or pass --merge-precisions "
            f"(merge_precisions=True) to pool them anyway ('{UNKNOWN_PRECISION}': made before the precision was "
            f"recorded)")
    return "+".join(names)
