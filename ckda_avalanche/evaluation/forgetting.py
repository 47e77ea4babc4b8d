"""Seen-average, forgetting and backward transfer over a session x dataset score matrix.

Everything here is a pure function of one matrix ``R`` of shape ``(S + 1, D)``:

- row ``s`` holds the scores measured after ``s`` training sessions have finished (row 0: before any
  training, usually all NaN), column ``d`` is the ``d``-th dataset of the stream (experience index);
- ``NaN`` marks "not evaluated";
- ``learned_at[d]`` is the row right after dataset ``d`` was learned. In the VI-LReID benchmark dataset
  ``d`` is the ``d``-th session, so the default is ``learned_at[d] = d + 1``.

Definitions (``docs/protocol.md``, "Session reporting"; forgetting after Chaudhry et al.,
"Riemannian Walk for Incremental Learning", ECCV 2018; BWT after Lopez-Paz & Ranzato, "Gradient Episodic
Memory", NeurIPS 2017):

- seen-average after session ``s``: mean of ``R[s, d]`` over the datasets learned so far
  (``learned_at[d] <= s``); before any training (``s == 0``) the mean over every evaluated dataset;
- forgetting of ``d`` after session ``s`` (for ``learned_at[d] < s``): best score of ``d`` measured in the
  rows ``learned_at[d] .. s - 1`` (after it was learned, before now) minus ``R[s, d]``. Scores measured
  before ``d`` was learned (zero-shot transfer) are deliberately not part of "best earlier";
- BWT after session ``S``: mean over ``d`` with ``learned_at[d] < S`` of ``R[S, d] - R[learned_at[d], d]``.
  Negative BWT means forgetting.

Scores are fractions in [0, 1] (mAP, CMC); the functions do not care about the unit.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "as_score_matrix",
    "default_learned_at",
    "seen_average",
    "forgetting_per_dataset",
    "average_forgetting",
    "backward_transfer",
]


def as_score_matrix(scores: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Validate and return ``scores`` as a float64 ``(S + 1, D)`` matrix (a copy)."""
    matrix = np.array(scores, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] < 1 or matrix.shape[1] < 1:
        raise ValueError(
            f"score matrix R must be 2-D (train_exp x eval_dataset) and non-empty, got shape {matrix.shape}"
        )
    if np.isinf(matrix).any():
        raise ValueError("score matrix R holds infinite values; use NaN for 'not evaluated'")
    return matrix


def default_learned_at(num_datasets: int) -> np.ndarray:
    """Row right after each dataset was learned when dataset ``d`` is session ``d + 1``."""
    return np.arange(1, num_datasets + 1, dtype=np.int64)


def _checked(
    scores: np.ndarray | Sequence[Sequence[float]], after: int, learned_at: Sequence[int] | None
) -> tuple[np.ndarray, np.ndarray]:
    matrix = as_score_matrix(scores)
    if not 0 <= int(after) < matrix.shape[0]:
        raise ValueError(f"after={after} is not a row of R (rows 0..{matrix.shape[0] - 1})")
    learned = default_learned_at(matrix.shape[1]) if learned_at is None else np.asarray(learned_at, np.int64)
    if learned.shape != (matrix.shape[1],):
        raise ValueError(
            f"learned_at must give one row per dataset ({matrix.shape[1]}), got shape {learned.shape}"
        )
    if (learned < 1).any():
        raise ValueError(f"learned_at rows must be >= 1 (row 0 is before training), got {learned.tolist()}")
    return matrix, learned


def _missing(name: str, cells: list[tuple[int, int]]) -> ValueError:
    listed = ", ".join(f"R[{r}, {d}]" for r, d in cells)
    return ValueError(f"{name}: required scores are not evaluated (NaN): {listed}")


def seen_average(
    scores: np.ndarray | Sequence[Sequence[float]],
    *,
    after: int,
    learned_at: Sequence[int] | None = None,
    strict: bool = True,
) -> float:
    """Mean of ``R[after, d]`` over the datasets learned by then (all evaluated ones when ``after == 0``).

    With ``strict`` a learned dataset that was not evaluated raises; otherwise it is left out of the mean.
    Returns NaN when no dataset qualifies.
    """
    matrix, learned = _checked(scores, after, learned_at)
    row = matrix[after]
    if after == 0:
        chosen = np.flatnonzero(~np.isnan(row))
    else:
        chosen = np.flatnonzero(learned <= after)
        missing = [int(d) for d in chosen if np.isnan(row[d])]
        if missing and strict:
            raise _missing("seen_average", [(after, d) for d in missing])
        chosen = np.array([d for d in chosen if not np.isnan(row[d])], dtype=np.int64)
    return float(row[chosen].mean()) if chosen.size else float("nan")


def forgetting_per_dataset(
    scores: np.ndarray | Sequence[Sequence[float]],
    *,
    after: int,
    learned_at: Sequence[int] | None = None,
) -> np.ndarray:
    """Forgetting of every dataset after session ``after``; NaN where not defined.

    Defined for datasets learned before session ``after`` (``learned_at[d] < after``) that were evaluated
    now and at least once between learning and now.
    """
    matrix, learned = _checked(scores, after, learned_at)
    out = np.full(matrix.shape[1], np.nan)
    for d in range(matrix.shape[1]):
        if learned[d] >= after or np.isnan(matrix[after, d]):
            continue
        earlier = matrix[learned[d] : after, d]
        if np.isnan(earlier).all():
            continue
        out[d] = np.nanmax(earlier) - matrix[after, d]
    return out


def average_forgetting(
    scores: np.ndarray | Sequence[Sequence[float]],
    *,
    after: int,
    learned_at: Sequence[int] | None = None,
    strict: bool = True,
) -> float:
    """Mean forgetting after session ``after`` over the datasets learned before it (NaN if none).

    With ``strict`` a dataset whose forgetting is undefined (a needed score is NaN) raises; otherwise it is
    left out of the mean.
    """
    matrix, learned = _checked(scores, after, learned_at)
    per_dataset = forgetting_per_dataset(matrix, after=after, learned_at=learned)
    eligible = np.flatnonzero(learned < after)
    undefined = [int(d) for d in eligible if np.isnan(per_dataset[d])]
    if undefined and strict:
        raise _missing(
            "average_forgetting",
            [(after, d) for d in undefined] + [(int(learned[d]), d) for d in undefined],
        )
    values = per_dataset[eligible]
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def backward_transfer(
    scores: np.ndarray | Sequence[Sequence[float]],
    *,
    after: int,
    learned_at: Sequence[int] | None = None,
    strict: bool = True,
) -> float:
    """BWT after session ``after``: mean over ``learned_at[d] < after`` of ``R[after, d] - R[learned_at[d], d]``.

    With ``strict`` a missing score raises; otherwise that dataset is left out. NaN when no dataset qualifies.
    """
    matrix, learned = _checked(scores, after, learned_at)
    diffs: list[float] = []
    missing: list[tuple[int, int]] = []
    for d in np.flatnonzero(learned < after):
        now, then = matrix[after, d], matrix[learned[d], d]
        if np.isnan(now) or np.isnan(then):
            missing += [(r, int(d)) for r, v in ((after, now), (int(learned[d]), then)) if np.isnan(v)]
            continue
        diffs.append(float(now - then))
    if missing and strict:
        raise _missing("backward_transfer", missing)
    return float(np.mean(diffs)) if diffs else float("nan")
